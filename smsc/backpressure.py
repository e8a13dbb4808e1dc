"""The answers a peer has not read yet, bounded: what keeps a flooding peer from growing our memory.

Every PDU read may be answered with a write, and a peer that floods requests but does not read our
answers would grow the transport's buffer without bound (an enquire_link flood took the daemon from
57 MB to 490 MB in 15 s). Once the buffer holds more than `WRITE_BUFFER_LIMIT`, a reader (the SMPP
and CIMD2 links', the built-in simulator's sessions) reads nothing more until it drains, so that the
peer's flood waits in TCP; a buffer that does not drain in time is a peer that will not read, and
its connection is aborted, its unsent bytes dropped, rather than closed (a close would wait for ever
to flush them).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# Bytes of answers the peer has not read yet beyond which the reader waits for them to drain.
WRITE_BUFFER_LIMIT = 1 << 20
# Bytes of the peer's requests read and not yet served, beyond which a link's reader reads no more
# (SMPP's held PDUs, CIMD2's inbox by the memory its packets take) until half of them are served.
# Below it the reader reads on while the deliveries wait for their handlers, so that the answers to
# our requests are read as they come: behind a flood they waited in TCP, and a submit the SMSC had
# answered went again as unanswered. Past it they wait there, but no response timer runs meanwhile
# (`smsc.stalls.ReadPause`).
HELD_LIMIT = 2 << 20


def unread(writer: asyncio.StreamWriter) -> int:
    """Bytes written and not yet taken by the peer's side of the socket."""
    return writer.transport.get_write_buffer_size()


def overfull(writer: asyncio.StreamWriter) -> bool:
    """More unread answers than we keep: the reader must wait, and a close must not wait to flush."""
    return unread(writer) > WRITE_BUFFER_LIMIT


async def drained(writer: asyncio.StreamWriter, within: float, event: str, **fields: Any) -> bool:
    """Read nothing more until our answers drain; False, with one `event` line, when they do not
    within `within` seconds (a peer that still reads has read by then): the caller aborts."""
    buffered = unread(writer)
    try:
        await asyncio.wait_for(writer.drain(), within)
    except TimeoutError:
        log.warning(event, **fields, buffered=buffered, unsent=unread(writer), waited=within)
        return False
    return True


NOT_READING = "the SMSC is not reading our answers"


async def stalled(writer: asyncio.StreamWriter, within: float, event: str, **fields: Any) -> str | None:
    """A link's reader over the limit: None once our answers drain, else why the SMSC is dropped."""
    if await drained(writer, within, event, **fields, error=NOT_READING):
        return None
    return f"{NOT_READING} ({unread(writer)} bytes unsent after {within:g} s)"
