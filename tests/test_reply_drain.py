"""A reply is followed by `drain` only when `drain` would do something: what LeanSMTP.push reads for it.

`LeanSMTP.push` skips `StreamWriter.drain` when the reader holds no error, the protocol is neither
paused by a full write buffer nor has lost its connection, and the transport is not closing: in
that state `drain` returns without waiting for anything. These tests hold that to asyncio's own
`drain` on real connections over a socket pair (asyncio's loop and uvloop's), so that a Python whose
`drain` waits for something else, or names those attributes differently, fails here instead of
writing replies past a full buffer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

LOOPS: list[Callable[[Awaitable[Any]], Any]] = [asyncio.run]
try:
    import uvloop

    LOOPS.append(uvloop.run)
except ImportError:  # pragma: no cover
    pass


def idle(writer: asyncio.StreamWriter) -> bool:
    """LeanSMTP.push's condition for leaving `drain` out (the protocol is the writer's)."""
    protocol: Any = writer._protocol  # type: ignore[attr-defined]
    reader: Any = protocol._stream_reader
    quiet = not (protocol._paused or protocol._connection_lost) and reader._exception is None
    return quiet and not writer.is_closing()


def finishes_at_once(writer: asyncio.StreamWriter) -> bool:
    """Whether `drain` returns on its first step, waiting for nothing."""
    step = writer.drain().__await__()
    try:
        step.send(None)
    except StopIteration:
        return True
    except (ConnectionError, OSError):
        return False  # it raised: it had something to say
    step.close()
    return False


async def connection() -> tuple[asyncio.StreamWriter, socket.socket]:
    ours, theirs = socket.socketpair()
    _reader, writer = await asyncio.open_connection(sock=ours)
    return writer, theirs


@pytest.mark.parametrize("run", LOOPS)
def test_drain_waits_for_nothing_when_push_leaves_it_out(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def check() -> None:
        writer, theirs = await connection()
        writer.write(b"250 2.0.0 OK\r\n")
        assert idle(writer) and finishes_at_once(writer)

        protocol: Any = writer._protocol  # type: ignore[attr-defined]
        protocol.pause_writing()  # what the transport calls past its high-water mark
        assert not idle(writer) and not finishes_at_once(writer)
        protocol.resume_writing()
        assert idle(writer) and finishes_at_once(writer)

        protocol._stream_reader.set_exception(ConnectionResetError())
        assert not idle(writer) and not finishes_at_once(writer)

        writer2, theirs2 = await connection()
        writer2.close()  # closing: drain yields to the loop so that connection_lost is seen
        assert not idle(writer2) and not finishes_at_once(writer2)
        await asyncio.sleep(0.05)
        assert not idle(writer2)  # and the connection, lost, makes drain raise

        theirs.close()
        theirs2.close()
        writer.close()

    run(check())
