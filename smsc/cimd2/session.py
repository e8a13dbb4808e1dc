"""One CIMD2 TCP session's state: the parser, the outstanding requests and the packet numbers.

They die with the connection, so that a new login starts cleanly at packet number 001; the link
(`link.py`) owns the protocol's behaviour on top of them. So do the connection's rate-limited
warnings (`throttle`); a close drops what the SMSC left unread past `smsc.backpressure`'s limit.

The SMSC's deliveries wait in the inbox for the link's `serve`, bounded by the memory their packets
take (`smsc.backpressure.HELD_LIMIT`), not by their count: below it the reader reads on, so that
the answers to our requests are read as they come. Behind a flood of deliveries (200,000 in one
write were all queued at first; then, bounded at 128, the rest waited in TCP) the answer to a
submit waited there too: its timer took it for unanswered, the session ended and the SMS went
again. Past the bound the rest waits in TCP, and our response timers stand still meanwhile
(`smsc.stalls.ReadPause`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from functools import partial

import structlog

from smsc import backpressure
from smsc.backpressure import overfull
from smsc.cimd2.packet import Cimd2Parser, Op, Packet, encode
from smsc.logthrottle import LogThrottle
from smsc.settings import LinkSettings
from smsc.stalls import FLOOD_CREDIT, FLOODED, ReadPause

# Answers remembered by number (`Conn.last_answers`): a copy later than this many is not told apart.
RECENT_ANSWERS = 8

log = structlog.get_logger(__name__)

PACKET_NUMBERS = 128  # odd numbers 001-255: no more requests can be outstanding at once
LAST_NUMBER = 255  # the highest odd packet number; the count wraps to 001 after it
# What a packet in the inbox takes, about (measured: an MO of four parameters some 680 bytes, one of
# 600 parameters in 3.6 kB 39 kB): the inbox is bounded by it (see the module docstring).
PACKET_BYTES, PARAM_BYTES = 320, 80


def weight(packet: Packet) -> int:
    return PACKET_BYTES + sum(PARAM_BYTES + len(value) for _, value in packet.params)


def effective_window(cfg: LinkSettings) -> int:
    """1 unless the admin set `window` for this link; never more than the 128 odd packet numbers."""
    return min(cfg.window, PACKET_NUMBERS) if cfg.window is not None else 1


def number_after(number: int) -> int:
    """The odd packet number that follows `number`: 001, 003, ..., 255, then 001 again."""
    return number + 2 if number < LAST_NUMBER else 1


@dataclass(slots=True)
class Pending:
    future: asyncio.Future[Packet | None]
    packet: Packet
    tries: int = 1
    # Handed to the socket: an answer lost after that leaves the SMSC possibly holding the request.
    written: bool = False
    # Submits written before it and unanswered when the connection closed (`SubmitResult.lost_behind`);
    # None when we closed it (`Conn.close`).
    lost_behind: int | None = None


class Conn:
    """One TCP session: its parser, outstanding requests and packet counter die with it, so that a
    new login starts cleanly at 001."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, window: int, patience: float = 0.0
    ) -> None:
        self.reader, self.writer = reader, writer
        self.parser = Cimd2Parser()
        self.throttle = LogThrottle(log)
        self.pending: dict[int, Pending] = {}
        # The dispatcher paces submits to `stats().window`; this is the protocol's limit on requests of
        # any kind (alive and logout too): stop-and-wait unless configured, and 128 packet numbers.
        self.numbers = asyncio.Semaphore(window)
        # Each with its `weight`, counted once as it comes in and taken off as it goes (a packet of
        # hundreds of parameters was weighed twice, its values' lengths summed each time).
        self.inbox: asyncio.Queue[tuple[Packet, int]] = asyncio.Queue()
        self.inbox_bytes = 0  # their weights
        self.room = asyncio.Event()  # the inbox takes more: the reader may read on
        self.room.set()
        self.pause = ReadPause(asyncio.get_running_loop())  # the reader waiting for `room`
        if patience > 0.0:  # the response timeout: a flood that never ends ends the session
            self.pause.bound(FLOOD_CREDIT * patience, partial(self.close, FLOODED, ours=True))
        self.closed = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.reason = ""
        # Closed because a request went unanswered (not by the SMSC, a stop or a NACK): the SMSC is
        # slow rather than gone, and may have taken the requests still outstanding.
        self.timed_out = False
        self.last_request = asyncio.get_running_loop().time()
        # Set by each answer to a request of ours (`smsc.outage.session_held`; the link clears it at the
        # login): an SMSC that takes the login and then answers nothing has not come up.
        self.answered = asyncio.Event()
        # The numbers of the last answers taken: a late copy of one answers nothing new (a long SMS's
        # parts go one at a time, so a copy of an older part's answer may come while a later part waits).
        self.last_answers: deque[int] = deque(maxlen=RECENT_ANSWERS)
        self._next = 1

    def allocate(self) -> int:
        while self._next in self.pending:
            self._next = number_after(self._next)
        number = self._next
        self._next = number_after(number)
        return number

    def renumber(self, old: int, new: int) -> Pending:
        """Give the outstanding request `old` the number `new` that the SMSC's NACK says it expects,
        and count on from there, as Kannel does: the SMSC keeps its own count of our requests, so
        every later request would otherwise be NACKed once more."""
        entry = self.pending.pop(old)
        entry.packet.number = new
        self.pending[new] = entry
        self._next = number_after(new)
        return entry

    def deliver(self, packet: Packet) -> None:
        """Queue an SMSC request for the link's `serve`; past the bound the reader waits (`inbox_room`)."""
        size = weight(packet)
        self.inbox.put_nowait((packet, size))
        self.inbox_bytes += size
        if self.inbox_bytes >= backpressure.HELD_LIMIT:
            self.room.clear()

    async def next_delivery(self) -> Packet:
        packet, size = await self.inbox.get()
        self.inbox_bytes -= size
        if self.inbox_bytes <= backpressure.HELD_LIMIT // 2:
            self.room.set()
        return packet

    async def inbox_room(self) -> None:
        """The reader's wait while the inbox is past its bound, until half of it is handed up; our
        requests' timers stand still meanwhile: their answers wait in TCP behind the rest."""
        await self.pause.wait(self.room)

    def send(self, packet: Packet) -> bool:
        """Hand the packet to the socket; False when it cannot reach the wire (the connection is gone).

        A peer's reset closes the transport before the reader has seen it. uvloop raises on a write
        only once the transport's handle is closed, which comes after `is_closing()` turns true, so
        the check below already makes that write a lost connection (SMPP lacked it before c3bf52a)."""
        if self.closed.is_set():
            return False
        if self.writer.is_closing():  # the transport would drop the bytes (or uvloop raise)
            self.close("connection lost")
            return False
        self.writer.write(encode(packet))
        return True

    def close(self, reason: str, *, timed_out: bool = False, abort: bool = False, ours: bool = False) -> None:
        """`abort` (or more unread than `smsc.backpressure` keeps) drops the unsent bytes instead of waiting
        to flush them: a peer that does not read would keep the socket and its buffer for ever. `ours`
        (as `timed_out` and `abort`: we close a session the SMSC kept, on a general error, NACKs, a
        stop): no submit on the wire ended it, so none is blamed (`SubmitResult.lost_behind` None)."""
        if abort or overfull(self.writer):
            self.writer.transport.abort()
        if self.closed.is_set():
            return
        self.reason = reason
        self.timed_out = timed_out
        self.closed.set()
        self.room.set()  # a reader waiting for the inbox reads on, to the end of the stream
        earlier = 0  # in the order written: the first of them is the one the SMSC was handling
        blame = not (ours or timed_out or abort)
        for entry in self.pending.values():
            if not entry.future.done():
                if blame and entry.written and entry.packet.op == Op.SUBMIT:
                    entry.lost_behind = earlier
                    earlier += 1
                entry.future.set_result(None)
        self.writer.close()
        self.throttle.flush()
        self.parser.flush_warnings()
