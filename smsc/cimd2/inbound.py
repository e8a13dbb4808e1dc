"""The SMSC's requests on a `Cimd2Link`'s connections: an alive (40) is answered at once, deliveries (20)
and status reports (23) are handed to `LinkEvents` one at a time in arrival order and acknowledged only
after they were committed, and anything else is refused with a general error (98). Each MO's
acknowledgement (70) is followed until the SMSC is known to have read it.

Choices the protocol leaves open, and why:

- A delivery the gateway could not commit (`Ack.RETRY`) is answered with a negative response
  (`900:10`, temporary congestion) rather than left unanswered: silence would stall the SMSC's whole
  delivery queue until its timeout, while a negative answer makes it schedule a retry of that one.
- An MO's 70 counts as received once the SMSC answered a request of ours written after it (the SMSC
  reads the connection in order): an alive (40) follows acknowledgements for that when no other
  request does (`smsc.base.MoAcks`). In stop-and-wait it takes the window for one round trip.
- An MO with an empty address or no user data is acknowledged, logged and counted, but not handed up:
  refusing it would make the SMSC redeliver the same unusable message forever.
- A stop lets the deliveries already read be committed and answered before the logout (02), whose
  answer then confirms their 70s; a delivery read once the logout is on its way gets the negative
  answer, as SMPP's deliver_sm after an unbind does: a 70 written after the logout could never be
  confirmed, and the SMSC keeps the message for the next session instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from smsc.base import Ack, InboundSms, LinkEvents, MoAcks
from smsc.cimd2.codes import error_text
from smsc.cimd2.messages import parse_mo, parse_report
from smsc.cimd2.packet import Op, P, Packet
from smsc.cimd2.session import Conn, Pending
from smsc.stalls import earliest

log = structlog.get_logger(__name__)

RETRY_ERROR = 10  # our negative answer to a delivery we could not commit: "temporary congestion"


class Exchange(Protocol):
    """The link's `Requests.exchange`, through which an alive confirms MO acknowledgements: it owns the
    packet numbers and the window, and skips the request when `unless()` holds once a number is free."""

    def __call__(
        self, conn: Conn, op: int, params: list[tuple[int, str]], *, unless: Callable[[], bool] | None = None
    ) -> Coroutine[Any, Any, Pending | None]: ...


class _Acks:
    """One connection's MO acknowledgements (`MoAcks`) and the loop time each delivery waiting in
    its inbox was read, in inbox order."""

    def __init__(self, acks: MoAcks) -> None:
        self.acks = acks
        self.arrivals: deque[tuple[float, float]] = deque()  # (read, earliest arrival) per delivery
        self.settled = asyncio.Event()  # no delivery is waiting in the inbox or being handled
        self.settled.set()
        self.leaving = False  # our logout is on its way: deliveries are refused from now on


class InboundRequests:
    """What the SMSC asks of one link; see the module docstring for the choices it makes. The counts
    are the link's own, so that its `stats()` shows them."""

    def __init__(self, link: str, counts: dict[str, int], exchange: Exchange) -> None:
        self.name = link
        self.events: LinkEvents | None = None  # the link's, from its start()
        self._counts = counts
        self._exchange = exchange
        self._acks: dict[Conn, _Acks] = {}  # by connection, while it lives
        self._prods: set[asyncio.Task[Pending | None]] = set()

    def opened(self, conn: Conn) -> None:
        self._acks[conn] = _Acks(MoAcks(self._acked, lambda: self._prod(conn)))

    def ended(self, conn: Conn) -> None:
        """The connection is over: what it did not confirm is reported unconfirmed."""
        session = self._acks.pop(conn, None)
        if session is not None:
            session.acks.closed()
        for prod in list(self._prods):
            prod.cancel()

    async def settle(self, conn: Conn, within: float) -> None:
        """Before a logout: wait (at most `within` seconds) until the deliveries already read are
        answered, so that their 70s come before the logout and its answer confirms them."""
        session = self._acks.get(conn)
        if session is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.settled.wait(), within)

    def leaving(self, conn: Conn) -> None:
        """Our logout is about to be written: a 70 written after it could never be confirmed, so
        deliveries from now on are refused and the SMSC keeps them."""
        session = self._acks.get(conn)
        if session is not None:
            session.leaving = True

    def acks(self, conn: Conn) -> MoAcks | None:
        """The connection's acknowledgements, which an answer to any request of ours confirms."""
        session = self._acks.get(conn)
        return session.acks if session is not None else None

    def request(self, conn: Conn, packet: Packet) -> None:
        """Called by the reader, which waits only for the inbox's room (`Conn.deliver`): deliveries queue
        for `serve`, which hands them up one at a time so that their answers keep their order."""
        if packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
        elif packet.op in (Op.DELIVER, Op.STATUS_REPORT):
            conn.deliver(packet)
            if (session := self._acks.get(conn)) is not None:
                loop = asyncio.get_running_loop()
                at = loop.time()
                session.arrivals.append((at, earliest(loop, at)))
                session.settled.clear()
        else:
            self._counts["unexpected"] += 1
            conn.throttle.warning("cimd2.unexpected_request", link=self.name, packet=packet.describe())
            conn.send(
                Packet.make(Op.GENERAL_ERROR, packet.number, (P.ERROR_CODE, 1), (P.ERROR_TEXT, error_text(1)))
            )

    def _prod(self, conn: Conn) -> bool:
        """An alive after MO acknowledgements, so that its answer confirms them; skipped when another
        request's answer confirmed them while it waited for a packet number (that answer also ended
        the prod in `MoAcks`). False when none can be written: the connection is gone."""
        session = self._acks.get(conn)
        if session is None or conn.closed.is_set():
            return False
        acks = session.acks
        task = asyncio.create_task(self._exchange(conn, Op.ALIVE, [], unless=lambda: not acks.waiting))
        self._prods.add(task)
        task.add_done_callback(self._prods.discard)
        return True

    def _acked(self, sms: InboundSms, confirmed: bool) -> None:
        if self.events is not None:
            self.events.on_acked(self.name, sms, confirmed)

    async def serve(self, conn: Conn) -> None:
        """Hand SMSC requests up one at a time, in arrival order, so that answers keep their order."""
        while True:
            packet = await conn.next_delivery()
            session = self._acks.get(conn)
            at = asyncio.get_running_loop().time()
            arrived = (at, at)
            if session is not None and session.arrivals:
                arrived = session.arrivals.popleft()
            try:
                await self._handle(conn, packet, *arrived, leaving=session is not None and session.leaving)
            except Exception:
                self._counts["errors"] += 1
                log.exception("cimd2.delivery_handling_failed", link=self.name, packet=packet.describe())
            if session is not None and conn.inbox.empty():
                session.settled.set()

    async def _handle(
        self, conn: Conn, packet: Packet, at: float, arrived: float, *, leaving: bool = False
    ) -> None:
        """`at`: when the packet was read; `arrived`: the earliest it may have come in (`smsc.stalls`)."""
        answer_op = packet.op + 50
        # A retransmission repeats the request whole. The number alone (one of 128 odd ones, reused
        # by an SMSC that restarts it, or by one that numbers every request 999) made another MO or
        # report (another 060, another text) one, acknowledged and dropped: a STOP, a paid vote lost.
        key = (packet.op, packet.number, tuple(packet.params))
        if key == conn.last_acked:
            self._counts["duplicates"] += 1
            conn.throttle.info("cimd2.retransmission", link=self.name, packet=packet.describe())
            conn.send(Packet(answer_op, packet.number))
            return
        if leaving:
            log.info("cimd2.delivery_refused_logging_out", link=self.name, packet=packet.describe())
            conn.send(Packet.make(answer_op, packet.number, (P.ERROR_CODE, RETRY_ERROR)))
            return
        parse = parse_mo if packet.op == Op.DELIVER else parse_report
        item = parse(packet, link=self.name, warn=conn.throttle.warning)
        if isinstance(item, str):
            self._counts["mo_rejected" if packet.op == Op.DELIVER else "reports_rejected"] += 1
            # One line per reason (four, all ours) and second: a flood of one hides no other.
            conn.throttle.warning("cimd2.delivery_rejected", kind=f"delivery_rejected:{item}", link=self.name,
                                  reason=item, packet=packet.describe())  # fmt: skip
            conn.send(Packet(answer_op, packet.number))
            conn.last_acked = key
            return
        assert self.events is not None
        session = self._acks.get(conn)
        if isinstance(item, InboundSms) and session is not None:
            item = session.acks.arrived(item, at, arrived)
        if isinstance(item, InboundSms):
            # No phone number: the MO is logged by its id once stored (`mo.recorded`), and `phone
            # forget` cannot erase a log line. The destination is one of the service's numbers.
            log.info("cimd2.mo", link=self.name, destination=item.destination, concat=item.concat,
                     number=packet.number)  # fmt: skip
        else:
            log.info("cimd2.report", link=self.name, message_id=item.message_id, status=item.status.value,
                     error=item.error)  # fmt: skip
        try:
            if isinstance(item, InboundSms):
                ack = await self.events.on_deliver(self.name, item)
            else:
                ack = await self.events.on_report(self.name, item)
        except Exception:
            log.exception("cimd2.handler_failed", link=self.name, packet=packet.describe())
            ack = Ack.RETRY
        if ack is Ack.OK:
            written = conn.send(Packet(answer_op, packet.number))
            conn.last_acked = key
            if isinstance(item, InboundSms) and (session := self._acks.get(conn)) is not None:
                session.acks.written(item, arrived=arrived, ok=written)
            elif isinstance(item, InboundSms):  # the session is over: no acknowledgement can be confirmed
                self._acked(item, False)
        else:
            log.warning("cimd2.delivery_deferred", link=self.name, packet=packet.describe())
            conn.send(Packet.make(answer_op, packet.number, (P.ERROR_CODE, RETRY_ERROR)))
            if isinstance(item, InboundSms) and (session := self._acks.get(conn)) is not None:
                session.acks.refused(item, arrived)
