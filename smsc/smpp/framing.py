"""Reading one SMPP session's byte stream (`smsc.smpp.connection.SmppConnection`): PDUs framed
from it, the SMSC's requests held while the deliveries wait at their bound, and no more read while
too many are held or our answers do not drain.

The answers to our requests (submit_sm_resp, generic_nack, enquire_link_resp, any response) and the
SMSC's enquire_link are served as they are read, ahead of the requests held: an SMSC that pushed more
deliver_sm than the bound without waiting for our answers left its submit_sm_resp in TCP behind
them, our timer took the submit for unanswered and it went to the phone twice. The held requests
are served in order as handlers finish (`Held`); past `smsc.backpressure.HELD_LIMIT` of them the
rest of the flood waits in TCP, and the response timers stand still meanwhile (`smsc.stalls.ReadPause`).

Kept apart from the connection's protocol state because framing has its own failures: a length no
PDU can have leaves no way to find the next boundary, and a peer that reads none of our answers is
bounded by `smsc.backpressure`. After the SMSC's unbind the stream is read only until its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import structlog

from smsc import backpressure
from smsc.backpressure import overfull, stalled
from smsc.smpp.codec import ENQUIRE_LINK, MAX_PDU, UNBIND, UNBIND_RESP, encode, generic_nack
from smsc.smpp.pdu import ESME_RINVCMDLEN
from smsc.stalls import FLOOD_CREDIT, FLOODED, ReadPause
from smsc.tls import foreign_peer, printable_head

if TYPE_CHECKING:
    from smsc.settings import LinkSettings
    from smsc.smpp.deliveries import Deliveries
    from smsc.smpp.submits import Submits

log = structlog.get_logger(__name__)
# smpplib writes a WARNING for every optional parameter it does not know and skips: one data_sm of
# 17,000 vendor TLVs (68 kB) was 17,000 lines of the daemon's log (data_sm is the codec's now; the
# rare commands smpplib still reads of what is framed here may carry as many). The PDU is served all
# the same.
logging.getLogger("smpplib.command").setLevel(logging.ERROR)


class LinkDown(Exception):
    """The connection is unusable; it is closed and the link reconnects."""


def served_at_once(raw: bytes) -> bool:
    """A response (to a request of ours), or the SMSC's enquire_link: never held behind deliveries."""
    return bool(raw[4] & 0x80) or struct.unpack_from(">I", raw, 4)[0] == ENQUIRE_LINK


class Held:
    """The SMSC's requests read while the deliveries waited at their bound, whole PDUs in the order
    read, each with the loop time its read came in (what its acknowledgement's lateness counts from,
    `smsc.base.MoAcks`). `room` is set while the reader may read on."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._reads: deque[tuple[int, float]] = deque()  # (bytes held in all after the read, its time)
        self._in = self._out = 0  # bytes ever held and served
        self.room = asyncio.Event()
        self.room.set()

    def __len__(self) -> int:
        return len(self.data)

    def add(self, raw: bytes, at: float) -> None:
        self.data += raw
        self._in += len(raw)
        if self._reads and self._reads[-1][1] == at:
            self._reads[-1] = (self._in, at)
        else:
            self._reads.append((self._in, at))

    def take(self) -> tuple[bytes, float]:
        """The oldest request held and when it was read; `room` once half the limit is served."""
        (length,) = struct.unpack_from(">I", self.data)
        raw = bytes(self.data[:length])
        del self.data[:length]
        start, self._out = self._out, self._out + length
        while self._reads[0][0] <= start:
            self._reads.popleft()
        if len(self.data) <= backpressure.HELD_LIMIT // 2:
            self.room.set()
        return raw, self._reads[0][1]

    def holds(self, command_id: int) -> bool:
        """Whether a request of that kind waits among those held."""
        data, at = self.data, 0
        while at + 8 <= len(data):
            length, command = struct.unpack_from(">II", data, at)
            if command == command_id:
                return True
            at += length
        return False

    def clear(self) -> None:
        """The connection is gone: what it held dies unanswered, and the SMSC delivers it again."""
        self.data.clear()
        self._reads.clear()
        self._out = self._in
        self.room.set()


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
    # Whole PDUs framed on this connection: while none has been, bytes that cannot be framed are
    # another service's (`foreign_peer`); after one, an SMSC's bad length, whose bytes are its PDUs'
    # middles (an SMS's text, a number) and are not quoted.
    framed: int = 0
    held: Held
    unbind_close: asyncio.TimerHandle | None = None  # `served`'s, after an unbind it served
    # The SMSC's unbind and its repeats (an SMSC's unbind_resp timer), answered once the deliveries
    # before the first are.
    unbind_answers: tuple[int, ...] = ()
    pause: ReadPause  # while too much is held: response timers stand still (`smsc.stalls`)
    send: Callable[[bytes], bool]
    close: Callable[..., None]
    _dispatch: Callable[[bytes], None]

    async def read_loop(self) -> None:
        reason = "closed by peer"
        abort = False
        patience = FLOOD_CREDIT * self.cfg.response_timeout_seconds  # a flood that never ends ends it
        self.pause.bound(patience, partial(self.close, FLOODED, ours=True))
        try:
            while chunk := await self._read():
                self.buf += chunk
                self.last_rx = self.loop.time()
                self._frames()
                if len(self.held) >= backpressure.HELD_LIMIT:  # the rest waits in TCP
                    await self._paused()
                if self._unbind_done():
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
                elif self.held.holds(UNBIND):
                    # Its unbind waited behind the MOs held and the SMSC closed without our answer:
                    # the end it announced (a restart, a failover), not one submit's doing.
                    self.submits.unbound_by_smsc()
                    reason = "unbind from SMSC"
        except LinkDown as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"read failed: {exc}"
        except Exception:
            log.exception("smpp.reader_failed", link=self.name)
            reason = "reader failed"
        finally:
            self._answer_unbind()  # its deadline passed with a handler still running
            self.close(reason, abort=abort)

    def answer_unbind(self, seq: int) -> None:
        """The SMSC's unbind is answered once the deliveries it wrote before it are (or at its deadline,
        `_read`). An SMSC ends the session at our unbind_resp: closed as soon as no submit was left,
        the reader dropped the deliver_sm_resp of an MO its handler was committing, and the MO,
        stored and mailed, came again; past `DOUBT_SECONDS` after the rebind it was mailed twice.
        An unbind repeated meanwhile is answered with the first: answered at once, it ended the session
        all the same, before the deliver_sm_resp."""
        self.unbind_answers = (*self.unbind_answers, seq)
        if not self.deliveries.tasks:
            self._answer_unbind()

    def _answer_unbind(self) -> None:
        seqs, self.unbind_answers = self.unbind_answers, ()
        if seqs and not self.closed.is_set() and not self.writer.is_closing():
            self.send(b"".join(encode(UNBIND_RESP, seq, 0) for seq in seqs))

    def _unbind_done(self) -> bool:
        """After the SMSC's unbind: whether nothing it may still read is awaited, neither the answers
        to our submits nor ours to its deliveries; the unbind is answered once the latter are. The
        answers awaited include those of submits past their timer whose late answer is still taken
        (`submits.late`): closed without them, an acceptance that followed the unbind was thrown
        away and the SMS went to the phone again after the reconnect."""
        if self.peer_unbound_until is None:
            return False
        if not self.deliveries.tasks:
            self._answer_unbind()
        return not self.submits.pending and not self.submits.late and not self.deliveries.tasks

    def _unbind_deadline(self) -> None:
        self._answer_unbind()
        self.close("unbind from SMSC")

    async def _paused(self) -> None:
        """Read no more until half the requests held are served; the timers of our requests, whose
        answers wait in TCP too, stand still meanwhile. The rest of a PDU begun waited for us too."""
        self.held.room.clear()
        await self.pause.wait(self.held.room)
        self.partial_since = self.loop.time() if self.buf else None

    def served(self) -> None:
        """A delivery was answered: the requests held behind it are served now, not at the next read,
        which may never come (the SMSC waits for those answers). After the SMSC's unbind, the last
        delivery answered ends the session. A fault ends the connection as the reader's would."""
        if self.closed.is_set() or not (self.held or self.peer_unbound_until is not None):
            return
        try:
            self._serve_held()
            if self._unbind_done():
                raise LinkDown("unbind from SMSC")
            if self.peer_unbound_until is not None and self.unbind_close is None:
                # An unbind served here: the reader waits for bytes with no deadline (`_read`) yet.
                self.unbind_close = self.loop.call_at(self.peer_unbound_until, self._unbind_deadline)
        except LinkDown as exc:
            self.close(str(exc))
        except Exception:
            log.exception("smpp.reader_failed", link=self.name)
            self.close("reader failed")

    def _serve_held(self) -> None:
        held = self.held
        while held and not self.closed.is_set() and not self.deliveries.full:
            raw, self.deliveries.read_at = held.take()
            try:
                self._dispatch(raw)
            finally:
                self.deliveries.read_at = None

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
        """Serve the whole PDUs read: the SMSC's requests in order, held while the deliveries waiting
        for their handler are too many (`served_at_once` never is)."""
        self._serve_held()
        buf, held, at = self.buf, self.held, self.last_rx
        while len(buf) >= 4 and not self.closed.is_set():
            (length,) = struct.unpack_from(">I", buf)
            if not 16 <= length <= MAX_PDU:
                # No way to find the next PDU boundary in a byte stream: say so and start afresh.
                self.bad_pdus += 1
                why = "unframeable bytes from peer"
                text = None if self.framed else printable_head(bytes(buf[:256]))
                if text is not None:  # a banner: another service
                    why = foreign_peer("SMPP", self.cfg.host, self.cfg.port, self.name, f"it sent '{text}'")
                # Past the first PDU the bytes where a header was due are another PDU's rest, an SMS's
                # text among them (an SMSC's wrong command_length): logged as their length alone.
                head = None if self.framed else bytes(buf[:16]).hex()
                log.error("smpp.garbage", link=self.name, length=length, head=head, error=why)
                self.send(generic_nack(0, ESME_RINVCMDLEN))
                raise LinkDown(why)
            if len(buf) < length:
                break
            raw = bytes(buf[:length])
            del buf[:length]
            self.framed += 1
            self.partial_since = None
            if (held or self.deliveries.full) and not served_at_once(raw):
                held.add(raw, at)
            else:
                self._dispatch(raw)
        if buf and self.partial_since is None:
            self.partial_since = self.loop.time()
