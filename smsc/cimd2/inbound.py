"""The SMSC's requests on a `Cimd2Link`'s connections: an alive (40) is answered at once, deliveries (20)
and status reports (23) are handed to `LinkEvents` side by side and each acknowledged only after it
was committed, and anything else is refused with a general error (98). Each MO's acknowledgement (70)
is followed until the SMSC is known to have read it.

Choices the protocol leaves open, and why:

- Deliveries are handed up as they are read, up to `MAX_IN_FLIGHT` per connection, so that those the
  SMSC's window lets it send at once share the store's commits (one at a time, each waited for its
  own commit and fsync: a vote ran at 60 MO/s against SMPP's 160). They are handed up in arrival
  order, so the store takes them (the parts of a long MO too) in the order they came.
- Their answers are written in arrival order all the same. A 70 carries its request's number, so an
  SMSC with a window could match answers out of order, but nothing we know of the protocol says it
  must: Kannel's driver, the reference client, is strictly stop-and-wait, test_cimd2 answered
  pipelined submits in order, and a retransmission is known by being the request just before it
  (protocols.md 1.2, 1.13). It costs little: commits are grouped, so deliveries committed together
  are answered together, and one waits only for the commit of those read before it.
- A delivery the gateway could not commit (`Ack.RETRY`) is answered with a negative response
  (`900:10`, temporary congestion) rather than left unanswered: silence would stall the SMSC's whole
  delivery queue until its timeout, while a negative answer makes it schedule a retry of that one.
- A retransmission (the same request whole as the delivery read just before it) is answered as that
  one is, once that one is, and not handed up again: it may come while the first is being committed.
  One that follows a delivery already refused is the SMSC's retry of it, and is handed up; so is a
  copy that comes after another delivery, as it always was: the store knows it by its 060
  (`gateway.store.mo`), as it knows a copy delivered on the next session.
- An MO's 70 counts as received once the SMSC answered a request of ours written after it (the SMSC
  reads the connection in order): an alive (40) follows acknowledgements for that when no other
  request does (`smsc.base.MoAcks`). In stop-and-wait it takes the window for one round trip. A NACK
  (99) of a 70 not yet confirmed refuses it (`nacked`): the SMSC delivers that MO again, and the copy
  is the same SMS, as after a 70 of ours that went unread.
- An MO without a usable address (no originator, no destination) is acknowledged, logged and counted,
  but not handed up: refusing it would make the SMSC redeliver the same unusable message forever. One
  with neither 033 nor 034, or with a 034 that is no hex, is no such message: the phone sent it (and,
  to a premium number, paid for it), so it is handed up, as the empty SMS it is or with a text saying
  its data came damaged, as SMPP's empty short_message and damaged user data are (`parse_mo`).
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
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import structlog

from smsc.base import Ack, DeliveryReport, InboundSms, LinkEvents, MoAcks
from smsc.cimd2.codes import error_text
from smsc.cimd2.messages import Once, parse_mo, parse_report
from smsc.cimd2.mostamps import MoStamps
from smsc.cimd2.packet import Op, P, Packet
from smsc.cimd2.session import Conn, Pending
from smsc.stalls import earliest

log = structlog.get_logger(__name__)

RETRY_ERROR = 10  # our negative answer to a delivery we could not commit: "temporary congestion"
# Deliveries handed up and not yet answered, per connection: more wait in the inbox, then in TCP. An
# SMSC's window is far smaller; this bounds the tasks an SMSC that ignores its own can make us hold.
MAX_IN_FLIGHT = 64

Key = tuple[int, int, tuple[tuple[int, str], ...]]  # (op, number, parameters): the request whole


class Exchange(Protocol):
    """The link's `Requests.exchange`, through which an alive confirms MO acknowledgements: it owns the
    packet numbers and the window, and skips the request when `unless()` holds once a number is free."""

    def __call__(
        self, conn: Conn, op: int, params: list[tuple[int, str]], *, unless: Callable[[], bool] | None = None
    ) -> Coroutine[Any, Any, Pending | None]: ...


@dataclass(eq=False, slots=True)
class _Delivery:
    """A 20 or 23 read and not yet answered. `ack` is None until it is decided: committed (OK),
    refused (RETRY), or answered without being handed up (`item` None: `original` for a retransmission
    of one not yet answered, else a plain 70 unless `refuse`)."""

    packet: Packet
    key: Key
    arrived: float  # the earliest it may have come in (`smsc.stalls`)
    item: InboundSms | DeliveryReport | None = None
    ack: Ack | None = None
    original: _Delivery | None = None
    refuse: bool = False  # answered with the negative answer without a word of deferral
    handed: bool = False  # its task is under way


class _Acks:
    """One connection's MO acknowledgements (`MoAcks`), the loop time each delivery waiting in its
    inbox was read, and the deliveries handed up, in arrival order, until each is answered."""

    def __init__(
        self, report: Callable[[InboundSms, bool], None], prod: Callable[[], bool], stamps: MoStamps
    ) -> None:
        self.acks = MoAcks(partial(self._report, report), prod)
        self.stamps = stamps  # a repeated 060 under another number, after a confirmed 70: a new SMS
        # The MO each 70 still unconfirmed was written for, by its number, and those of them the SMSC
        # NACKed (99): their acknowledgement is reported unconfirmed, whatever answer follows (`nacked`).
        self.written: dict[int, tuple[InboundSms, float]] = {}  # with the time it arrived
        self.nacked: set[int] = set()  # `id` of each such MO, while its report is due
        # (read, earliest arrival, the SMSC's requests counted then: `MoStamps.took`) per delivery
        self.arrivals: deque[tuple[float, float, int]] = deque()
        self.read_last: Key | None = None  # the delivery read last: a retransmission does not count
        self.settled = asyncio.Event()  # no delivery is waiting in the inbox or being handled
        self.settled.set()
        self.leaving = False  # our logout is on its way: deliveries are refused from now on
        self.unanswered: deque[_Delivery] = deque()  # in arrival order: answers are written in it
        self.previous: _Delivery | None = None  # the delivery read last: a retransmission repeats it
        self.room = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.tasks: set[asyncio.Task[None]] = set()

    def _report(self, report: Callable[[InboundSms, bool], None], sms: InboundSms, confirmed: bool) -> None:
        for number in [n for n, (written, _at) in self.written.items() if written is sms]:
            del self.written[number]
        if id(sms) in self.nacked:
            self.nacked.discard(id(sms))
            confirmed = False
        self.stamps.acked(sms, confirmed)
        report(sms, confirmed)


class InboundRequests:
    """What the SMSC asks of one link; see the module docstring for the choices it makes. The counts
    are the link's own, so that its `stats()` shows them."""

    def __init__(self, link: str, counts: dict[str, int], exchange: Exchange) -> None:
        self.name = link
        self.events: LinkEvents | None = None  # the link's, from its start()
        self.report_read: Callable[[DeliveryReport], DeliveryReport] = lambda report: (
            report
        )  # (`gracereports`)
        self._counts = counts
        self._exchange = exchange
        self._acks: dict[Conn, _Acks] = {}  # by connection, while it lives
        self._prods: set[asyncio.Task[Pending | None]] = set()
        self._repeated = Once(log.warning)  # an MO's 060 repeated (`mostamps.py`), said once per link

    def opened(self, conn: Conn) -> None:
        self._acks[conn] = _Acks(self._acked, lambda: self._prod(conn), MoStamps(self.name, self._repeated))

    def ended(self, conn: Conn) -> None:
        """The connection is over: what it did not confirm is reported unconfirmed, and deliveries still
        being handled are dropped unanswered (the SMSC delivers them again), as the link's tasks are."""
        session = self._acks.pop(conn, None)
        if session is not None:
            session.acks.closed()
            for task in list(session.tasks):
                task.cancel()
            for delivery in session.unanswered:  # committed, its 70 waiting for one before it
                if isinstance(delivery.item, InboundSms) and delivery.ack is Ack.OK:
                    self._acked(delivery.item, False)
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

    def nacked(self, conn: Conn, packet: Packet) -> bool:
        """A NACK (99) of an MO's 70 whose reading is not yet confirmed: the SMSC did not take our
        acknowledgement and delivers the MO again. Taken as refused (`MoAcks.refused`), that copy is
        known as the same SMS; read as a stray NACK, the 70 was confirmed by the next answer and the
        copy, with no 060 to name it, was recorded (a vote charged) twice. False for any other."""
        session = self._acks.get(conn)
        if session is None or packet.number in conn.pending:  # (a NACK of a request of ours)
            return False
        if (acked := session.written.pop(packet.number, None)) is None:
            return False
        sms, arrived = acked
        self._counts["nacks"] += 1
        session.nacked.add(id(sms))
        session.acks.refused(sms, arrived)
        conn.throttle.warning("cimd2.ack_nacked", link=self.name, number=packet.number,
                              destination=sms.destination)  # fmt: skip
        return True

    def request(self, conn: Conn, packet: Packet) -> None:
        """Called by the reader, which waits only for the inbox's room (`Conn.deliver`): deliveries queue
        for `serve`, which hands them up in arrival order."""
        if packet.op not in (Op.DELIVER, Op.STATUS_REPORT) and (session := self._acks.get(conn)) is not None:
            session.stamps.took()  # a number of the SMSC's counter (deliveries below, alike when read)
        if packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
        elif packet.op in (Op.DELIVER, Op.STATUS_REPORT):
            conn.deliver(packet)
            if (session := self._acks.get(conn)) is not None:
                loop = asyncio.get_running_loop()
                at = loop.time()
                # Counted when read, as alives are: counted when served, each alive read while it waited
                # shortened its window (`smsc.cimd2.mostamps`), a resend taken for a new SMS.
                key = (packet.op, packet.number, tuple(packet.params))
                taken = session.stamps.took(again=key == session.read_last)
                session.read_last = key
                session.arrivals.append((at, earliest(loop, at), taken))
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
        """Take the SMSC's deliveries in arrival order, each handed up in a task of its own once fewer
        than `MAX_IN_FLIGHT` are unanswered; `_answer` writes the answers in the same order."""
        session = self._acks.get(conn)
        if session is None:
            return
        while True:
            await session.room.acquire()  # before taking a delivery: none is held while waiting
            packet = await conn.next_delivery()
            now = asyncio.get_running_loop().time()
            at, arrived, taken = session.arrivals.popleft() if session.arrivals else (now, now, None)
            # A retransmission repeats the request whole. The number alone (one of 128 odd ones, reused
            # by an SMSC that restarts it, or by one that numbers every request 999) made another MO or
            # report (another 060, another text) one, acknowledged and dropped: a STOP, a paid vote lost.
            delivery = _Delivery(packet, (packet.op, packet.number, tuple(packet.params)), arrived)
            session.unanswered.append(delivery)
            try:
                self._take(conn, session, delivery, at, taken)
            except Exception:
                self._counts["errors"] += 1
                log.exception("cimd2.delivery_handling_failed", link=self.name, packet=packet.describe())
                if not delivery.handed:  # the SMSC delivers it again
                    delivery.ack, delivery.refuse = Ack.RETRY, True
            self._answer(conn, session)

    def _take(self, conn: Conn, session: _Acks, delivery: _Delivery, at: float, taken: int | None) -> None:
        """Decide what needs no commit at once, in arrival order (retransmission, refusal, rejection,
        `MoAcks.arrived`); hand the rest up. `at`: when the packet was read."""
        packet, key, arrived = delivery.packet, delivery.key, delivery.arrived
        previous, session.previous = session.previous, delivery
        original = previous and (previous.original or previous)
        # One refused is delivered again as the SMSC schedules it: that copy is handed up anew.
        if original is not None and key == original.key and original.ack is not Ack.RETRY:
            self._counts["duplicates"] += 1
            conn.throttle.info("cimd2.retransmission", link=self.name, packet=packet.describe())
            delivery.original = original
            delivery.ack = Ack.OK  # answered as its original is: that one is answered first
            return
        if taken is None:  # read before its connection's acknowledgements were set up
            taken = session.stamps.took()
        if session.leaving:
            log.info("cimd2.delivery_refused_logging_out", link=self.name, packet=packet.describe())
            delivery.ack, delivery.refuse = Ack.RETRY, True
            return
        parse = parse_mo if packet.op == Op.DELIVER else parse_report
        item = parse(packet, link=self.name, warn=conn.throttle.warning)
        if isinstance(item, str):
            self._counts["mo_rejected" if packet.op == Op.DELIVER else "reports_rejected"] += 1
            # One line per reason (three, all ours) and second: a flood of one hides no other.
            conn.throttle.warning("cimd2.delivery_rejected", kind=f"delivery_rejected:{item}", link=self.name,
                                  reason=item, packet=packet.describe())  # fmt: skip
            delivery.ack = Ack.OK
            return
        if isinstance(item, InboundSms):
            item = session.acks.arrived(session.stamps.arrived(item, packet.number, taken), at, arrived)
            session.stamps.handed(item)
            # No phone number: the MO is logged by its id once stored (`mo.recorded`), and `phone
            # forget` cannot erase a log line. The destination is one of the service's numbers.
            log.info("cimd2.mo", link=self.name, destination=item.destination, concat=item.concat,
                     number=packet.number)  # fmt: skip
        else:
            log.info("cimd2.report", link=self.name, message_id=item.message_id, status=item.status.value,
                     error=item.error)  # fmt: skip
            item = self.report_read(item)
        delivery.item = item
        # Tasks start in creation order: the store queues their writes in arrival order.
        task = asyncio.create_task(self._hand_up(conn, session, delivery, item))
        delivery.handed = True
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    async def _hand_up(
        self, conn: Conn, session: _Acks, delivery: _Delivery, item: InboundSms | DeliveryReport
    ) -> None:
        assert self.events is not None
        try:
            if isinstance(item, InboundSms):
                ack = await self.events.on_deliver(self.name, item)
            else:
                ack = await self.events.on_report(self.name, item)
        except Exception:
            log.exception("cimd2.handler_failed", link=self.name, packet=delivery.packet.describe())
            ack = Ack.RETRY
        delivery.ack = ack
        self._answer(conn, session)

    def _answer(self, conn: Conn, session: _Acks) -> None:
        """Write the answers decided, in arrival order: up to the first delivery still being handled."""
        queue = session.unanswered
        while queue and queue[0].ack is not None:
            delivery = queue.popleft()
            session.room.release()
            try:
                self._write(conn, session, delivery)
            except Exception:
                self._counts["errors"] += 1
                log.exception(
                    "cimd2.delivery_handling_failed", link=self.name, packet=delivery.packet.describe()
                )
        if not queue and conn.inbox.empty():
            session.settled.set()

    def _write(self, conn: Conn, session: _Acks, delivery: _Delivery) -> None:
        packet, item = delivery.packet, delivery.item
        answer_op = packet.op + 50
        ack = delivery.original.ack if delivery.original is not None else delivery.ack
        if item is None and ack is Ack.OK and not delivery.refuse:  # a retransmission or a rejection
            conn.send(Packet(answer_op, packet.number))
            return
        current = self._acks.get(conn) is session
        if ack is Ack.OK:
            written = conn.send(Packet(answer_op, packet.number))
            if isinstance(item, InboundSms) and current:
                if written:  # its NACK, if the SMSC sends one, carries this number (`nacked`)
                    session.written[packet.number] = (item, delivery.arrived)
                session.acks.written(item, arrived=delivery.arrived, ok=written)
            elif isinstance(item, InboundSms):  # the session is over: no acknowledgement can be confirmed
                self._acked(item, False)
            return
        if not delivery.refuse:
            log.warning("cimd2.delivery_deferred", link=self.name, packet=packet.describe())
        conn.send(Packet.make(answer_op, packet.number, (P.ERROR_CODE, RETRY_ERROR)))
        if isinstance(item, InboundSms) and current:
            session.acks.refused(item, delivery.arrived)
