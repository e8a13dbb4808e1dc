"""Reading one SMPP session's byte stream (`smsc.smpp.connection.SmppConnection`): PDUs framed
from it, no more read while the deliveries wait at their bound or our answers do not drain.

Kept apart from the connection's protocol state because framing has its own failures: a length no
PDU can have leaves no way to find the next boundary, and a peer that reads none of our answers is
bounded by `smsc.backpressure`. After the SMSC's unbind the stream is read only until its deadline.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from smsc.backpressure import overfull, stalled
from smsc.smpp.codec import MAX_PDU, generic_nack
from smsc.smpp.pdu import ESME_RINVCMDLEN

if TYPE_CHECKING:
    from smsc.settings import LinkSettings
    from smsc.smpp.deliveries import Deliveries
    from smsc.smpp.submits import Submits

log = structlog.get_logger(__name__)


class LinkDown(Exception):
    """The connection is unusable; it is closed and the link reconnects."""


class PduReader:
    """The reading half of `SmppConnection`, which holds the state named here; on the event loop."""

    cfg: LinkSettings
    name: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop: asyncio.AbstractEventLoop
    closed: asyncio.Event
    deliveries: Deliveries
    submits: Submits
    buf: bytearray
    last_rx: float
    bad_pdus: int
    peer_unbound_until: float | None
    # When the head PDU's first bytes came while the rest has not (None: nothing partial). A PDU whose
    # command_length says more than the SMSC sends swallows every later PDU, our answers among them,
    # while the bytes keep coming: neither the keep-alive (bytes do come) nor a garbage length says so.
    partial_since: float | None = None
    send: Callable[[bytes], bool]
    close: Callable[..., None]
    _dispatch: Callable[[bytes], None]

    async def read_loop(self) -> None:
        reason = "closed by peer"
        abort = False
        try:
            while chunk := await self._read():
                self.buf += chunk
                self.last_rx = self.loop.time()
                self._frames()
                while self.deliveries.full and not self.closed.is_set():  # the rest waits in TCP
                    await self.deliveries.room()
                    self.partial_since = None  # the rest of the head PDU waited for us, not the SMSC
                    self._frames()
                if self.peer_unbound_until is not None and not self.submits.pending:
                    raise LinkDown("unbind from SMSC")
                if overfull(self.writer):  # read no more until our answers drain
                    wait = self.cfg.response_timeout_seconds
                    if why := await stalled(self.writer, wait, "smpp.peer_not_reading", link=self.name):
                        reason, abort = why, True
                        break
                    self.partial_since = None if not self.buf else self.loop.time()
            else:
                if self.peer_unbound_until is not None:
                    reason = "unbind from SMSC"
        except LinkDown as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"read failed: {exc}"
        except Exception:
            log.exception("smpp.reader_failed", link=self.name)
            reason = "reader failed"
        finally:
            self.close(reason, abort=abort)

    async def _read(self) -> bytes:
        """The next bytes; after the SMSC's unbind only until its deadline (`_on_unbind`), and while a
        PDU is partial only until `response_timeout_seconds` after its first bytes (`partial_since`)."""
        deadline, why = None, ""
        if self.partial_since is not None:
            deadline = self.partial_since + self.cfg.response_timeout_seconds
            said = f"{struct.unpack_from('>I', self.buf)[0]} bytes" if len(self.buf) >= 4 else "a length"
            why = f"PDU of {said} (by its command_length) incomplete after"
            why += f" {self.cfg.response_timeout_seconds:g} s"
        if self.peer_unbound_until is not None and (deadline is None or self.peer_unbound_until < deadline):
            deadline, why = self.peer_unbound_until, "unbind from SMSC"
        if deadline is None:
            return await self.reader.read(65536)
        left = deadline - self.loop.time()
        try:
            if left <= 0:
                raise TimeoutError
            return await asyncio.wait_for(self.reader.read(65536), left)
        except TimeoutError:
            if why != "unbind from SMSC":
                self.bad_pdus += 1
                head = bytes(self.buf[:16]).hex()
                log.error("smpp.partial_pdu", link=self.name, head=head, held=len(self.buf))
            raise LinkDown(why) from None

    def _frames(self) -> None:
        """Serve the whole PDUs read while the deliveries waiting for their handler are not too many."""
        buf = self.buf
        while len(buf) >= 4 and not self.closed.is_set() and not self.deliveries.full:
            (length,) = struct.unpack_from(">I", buf)
            if not 16 <= length <= MAX_PDU:
                # No way to find the next PDU boundary in a byte stream: say so and start afresh.
                self.bad_pdus += 1
                log.error("smpp.garbage", link=self.name, length=length, head=bytes(buf[:16]).hex())
                self.send(generic_nack(0, ESME_RINVCMDLEN))
                raise LinkDown("unframeable bytes from peer")
            if len(buf) < length:
                break
            raw = bytes(buf[:length])
            del buf[:length]
            self.partial_since = None
            self._dispatch(raw)
        if buf and self.partial_since is None and not self.deliveries.full:
            self.partial_since = self.loop.time()
