"""The contract between the gateway and every SMSC protocol driver.

The rest of the gateway never learns which protocol a link speaks: it hands an `OutboundSms` to
`SmscLink.submit` and gets an `Outcome` back, and it receives MOs and delivery reports through
`LinkEvents`. Drivers map their protocol's status codes to `Outcome` in one table each.

Rules every driver follows (tested for each driver):

- `start()` MUST return promptly; the driver connects, logs in and reconnects with back-off on
  its own, reporting every change through `events.on_state`.
- `send()` is `submit()` as a future, for the dispatcher: a driver that can write the request before
  returning does (SMPP), so that a window place freed by an answer is refilled in the same step.
- `submit()` MUST resolve exactly once: on the SMSC's answer, or with `Outcome.TEMPORARY` on a
  lost connection or while the link is not ACTIVE. It MUST NOT raise for protocol trouble. A
  submit written to the socket whose connection the SMSC (or a stop) then cut is TEMPORARY: the
  dispatcher re-sends it (the at-least-once window of SPEC R-7.5). One left unanswered past the
  response timeout resolves `Outcome.UNANSWERED`, with `SubmitResult.late`: the SMSC is slow
  rather than gone and may have it, and a re-send before its answer would put a second copy on
  the phone. The future resolves with the late answer, or with None once none can come (twice the
  grace of `retry_after` seconds is over, or the connection is gone: CIMD2 drops it at the
  timeout, so its `late` is None at once); the part waits `retry_after` and its re-send is logged
  as a possible duplicate. While that late answer may still wait unread behind the connection's
  paused reader, the part is not sent again by any link (`smsc.lateholds.holding`): the dispatcher
  puts it back in the queue until the answer is read, the session ends or the grace has run unpaused.
- A throttling / queue-full answer MUST be `Outcome.THROTTLED`; the driver does not pause itself:
  the link's `smsc.pacing.LinkPacer` (window, rate, throttle pauses) is the dispatcher's, and the
  dispatcher retries without counting a failure. A driver limits outstanding requests only for a
  protocol reason (CIMD2's packet numbers) and reports its effective window in `stats().window`.
- `SubmitResult.message_id` MUST be the key that the same link's `DeliveryReport.message_id`
  will carry (normalised by the driver, e.g. hex vs decimal), so that the store can match them.
- A driver MUST acknowledge an MO or a report to the SMSC only after `on_deliver`/`on_report`
  returned `Ack.OK` (the gateway committed it); on `Ack.RETRY` it answers with a temporary error
  so that the SMSC delivers it again.
- For every MO that `on_deliver` took (`Ack.OK`) the driver later calls `events.on_acked` exactly
  once, through the connection's `MoAcks`: confirmed when the SMSC answered a request the driver
  wrote after the acknowledgement on the same connection (an SMSC reads a connection in order, so
  it has read the acknowledgement), unconfirmed when the acknowledgement could not be written, was
  written too late (`ACK_LATE_SECONDS`: the SMSC may have stopped waiting for it) or its connection
  ended first. Only a confirmed acknowledgement makes the SMSC's next identical MO a new SMS rather
  than the same one delivered again (`gateway.store.mo`). So that confirmation comes within a round
  trip, the driver writes a cheap request (SMPP enquire_link, CIMD2 alive) after acknowledgements
  when `MoAcks` asks for one.
- Bytes from the network MUST never crash the driver: malformed input is logged, counted and
  answered with the protocol's error reply where one exists.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog

from smsc.mocopies import ACK_LATE_SECONDS, Copies
from smsc.mocopies import OWED_MAX as OWED_MAX  # read here by the links and tests, as before
from smsc.mocopies import OWED_SECONDS as OWED_SECONDS

log = structlog.get_logger(__name__)


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"
    ACTIVE = "active"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # the SMSC took it; a message id is known
    REJECTED = "rejected"  # permanent refusal of this message; do not retry
    MALFORMED = "malformed"  # we built something the SMSC cannot parse; do not retry
    TEMPORARY = "temporary"  # timeout, link down, temporary error: retry with back-off
    THROTTLED = "throttled"  # slow down and retry; never counts as a failure
    UNANSWERED = "unanswered"  # sent, no answer in time: the SMSC may have it; wait before a re-send


class Ack(enum.Enum):
    OK = "ok"  # committed; the driver may acknowledge to the SMSC
    RETRY = "retry"  # not committed; answer with a temporary error so the SMSC re-delivers


class ReportStatus(enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    PENDING = "pending"  # intermediate (ENROUTE, ACCEPTD, buffered): no state change


# Called by a link once it writes a submit: it may hold one a while first (`smsc.cimd2.spacing`).
OnWire = Callable[[], None]


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One SMS part as it goes on the air.

    `payload` is the user data without the UDH: for data_coding 0, unpacked GSM 03.38 septets
    (one per octet, extension characters as ESC + code); for data_coding 8, UTF-16BE octets.
    `text` is the same part as Unicode, for protocols that send text (CIMD2 033) and for logs.
    """

    part_id: int
    source: str  # "+48601123456" (international), "7155" (short code) or "ACME" (alphanumeric)
    destination: str  # E.164 with "+"
    data_coding: int
    payload: bytes
    text: str
    udh: bytes = b""  # complete UDH including its length octet, or empty
    validity: datetime | None = None  # absolute, timezone-aware; None = SMSC default
    want_report: bool = True


@dataclass(frozen=True, slots=True)
class SubmitResult:
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None  # human-readable reason, e.g. "ESME_RINVDSTADR (0x0B)"
    # UNANSWERED only: the SMSC's answer if it still comes (see the rules above), else None.
    late: asyncio.Future[SubmitResult | None] | None = None
    # UNANSWERED: the grace for a late answer; TEMPORARY from SMPP's repeated ESME_RMSGQFUL with
    # nothing else answered meanwhile, or its ESME_RINVEXPIRY to a relative validity (the link now
    # writes absolute ones): the uncounted wait before the part goes again.
    retry_after: float = 0.0
    # TEMPORARY only: the request was written before its connection was lost, so the SMSC may have
    # taken it and a re-send may be a second copy on the phone (logged and counted, R-7.5).
    written: bool = False
    # TEMPORARY only: refused before anything was written (the link was not up: a part handed over
    # as its connection went): no attempt was made, so none is counted and no back-off grows.
    unsent: bool = False
    # TEMPORARY and written only, when the SMSC dropped the session without a word (EOF, a reset)
    # with the submit unanswered: how many submits written before it in that session were
    # unanswered too. 0 is the oldest the SMSC left unanswered, the one it was handling when the
    # session ended: the likeliest cause of a drop on a submit (an SMSC that crashes or cuts the
    # session on one particular SMS); those behind it were only lost with it (`gateway.outcomes`).
    # None when nothing points at a submit: a session the gateway ended itself (a response timeout,
    # a general error, its keep-alives unanswered), or one the SMSC ended in words (an unbind).
    lost_behind: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    message_id: str  # same normalisation as SubmitResult.message_id
    status: ReportStatus
    error: str | None = None  # e.g. "UNDELIV err:001" or "CIMD2 061:3 062:1 unknown subscriber"
    destination: str | None = None  # the phone the SMS went to, if the report says
    done_at: datetime | None = None
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Concat:
    ref: int
    total: int
    seq: int


# What an SMSC pads an address with: blanks of a fixed-width field, a C string's NULs.
ADDRESS_PADDING = " \t\r\n\x0b\x0c\x00"


def unpadded(address: str) -> str:
    """An MO's address without the blanks and NULs around it, as a driver hands it up: "7355 " was
    no premium number (the paid SMS went to the fallback unbilled), " 48601123456" no phone (its
    answer lost its conversation). Blanks inside stay: "+48 7355" is no number the gateway reads.
    One of blanks alone stays as it came, for the gateway to record as the SMSC wrote it."""
    return address.strip(ADDRESS_PADDING) or address


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An MO as the SMSC handed it over; one segment if the phone sent a long text."""

    source: str  # the phone, E.164 with "+" where the SMSC gave an international number
    destination: str  # our number or short code as addressed by the phone
    text: str
    data_coding: int = 0
    concat: Concat | None = None
    received_at: datetime | None = None
    raw: dict[str, str] = field(default_factory=dict)
    # An identical one-part MO came on the same connection less than ACK_LATE_SECONDS before and was
    # not refused, read with it or after our answer to it went in time (`smsc.mocopies`): the SMSC
    # waits for our answer before delivering an MO again, so this is a new SMS, however unconfirmed
    # the first is. `resent`: it is the SMSC's re-send of that one (the same sequence number, or read
    # while our answer to it was still unwritten): the same SMS, acknowledged and not mailed again.
    repeated: bool = False
    resent: bool = False


class LinkEvents(Protocol):
    async def on_deliver(self, link: str, sms: InboundSms) -> Ack: ...

    async def on_report(self, link: str, report: DeliveryReport) -> Ack: ...

    def on_state(self, link: str, state: LinkState) -> None: ...

    def on_acked(self, link: str, sms: InboundSms, confirmed: bool) -> None:
        """What became of the acknowledgement of an MO `on_deliver` took (see the rules above)."""
        ...


class MoAcks:
    """The acknowledgements of MOs written to one connection, until the SMSC is known to have read them.

    The driver calls `written` after writing (or failing to write) an MO's acknowledgement, takes
    `count` as the mark of each request it writes, and calls `answered(mark)` when such a request is
    answered: every acknowledgement written before that request is then confirmed. `closed()` (the
    connection ended) reports the rest as unconfirmed. `prod` is the driver's way of writing a
    request only to get an answer (enquire_link, alive); it is asked for at most once at a time,
    after the loop step that wrote acknowledgements, so a burst of MOs costs one request. It returns
    whether it wrote (or queued) that request: one the driver may not write (an SMPP link that has
    sent its unbind) leaves no prod pending, so that a later answer or ask is not waited for in vain.
    """

    def __init__(self, report: Callable[[InboundSms, bool], None], prod: Callable[[], bool]) -> None:
        self._report = report
        self._prod = prod
        self.count = 0  # acknowledgements written so far: the mark of a request written now
        self._waiting: deque[tuple[int, InboundSms]] = deque()
        self._prod_mark: int | None = None  # `count` when the prod in flight was asked for
        self._prod_due = False
        self._closed = False
        self._copies = Copies()  # which MO read here is a new SMS, which the SMSC's re-send

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    @property
    def prod_in_flight(self) -> bool:
        """Whether a prod was written whose answer the next prod waits for."""
        return self._prod_mark is not None

    def arrived(
        self, sms: InboundSms, at: float, since: float | None = None, seq: int | None = None
    ) -> InboundSms:
        """`sms` as read at loop time `at`, as request `seq` (SMPP's sequence number), marked `repeated`
        (a new SMS) or `resent` (the SMSC's copy) by an identical one-part MO read on this connection
        shortly before (`smsc.mocopies`). `since` is the earliest it may have come in
        (`smsc.stalls.earliest`): read after the loop stood still, two copies read side by side may
        have come seconds apart, the second the SMSC's."""
        return self._copies.arrived(sms, at, since, seq)

    def refused(self, sms: InboundSms, at: float) -> None:
        """The MO read at `at` was answered with an error: the SMSC delivers it again (`Copies.refused`)."""
        self._copies.refused(sms, at)

    def written(self, sms: InboundSms, *, arrived: float, ok: bool) -> None:
        """After the acknowledgement of `sms` was handed to the socket (`ok`) or could not be;
        `arrived` is the loop time the MO was read."""
        loop = asyncio.get_running_loop()
        if not ok or self._closed:
            self._tell(sms, False, "not written")
            return
        self._copies.answered(sms, loop.time())
        if loop.time() - arrived > ACK_LATE_SECONDS:
            self._tell(sms, False, "written late")
            return
        self.count += 1
        self._waiting.append((self.count, sms))
        self._ask_prod()

    def answered(self, mark: int) -> None:
        """A request written when `count` was `mark` was answered: the SMSC read what came before it."""
        while self._waiting and self._waiting[0][0] <= mark:
            sms = self._waiting.popleft()[1]
            self._copies.confirmed(sms)
            self._tell(sms, True)
        if self._prod_mark is not None and mark >= self._prod_mark:
            self._prod_mark = None
            self._ask_prod()

    def closed(self) -> None:
        """The connection ended: what it did not confirm may not have reached the SMSC."""
        self._closed = True
        while self._waiting:
            self._tell(self._waiting.popleft()[1], False, "connection ended before the SMSC answered")

    def _ask_prod(self) -> None:
        if self._waiting and self._prod_mark is None and not self._prod_due and not self._closed:
            self._prod_due = True
            asyncio.get_running_loop().call_soon(self._send_prod)

    def _send_prod(self) -> None:
        self._prod_due = False
        if self._waiting and self._prod_mark is None and not self._closed:
            mark = self.count
            if self._prod():
                self._prod_mark = mark

    def _tell(self, sms: InboundSms, confirmed: bool, why: str = "") -> None:
        if not confirmed:
            log.info("mo.ack_unconfirmed", destination=sms.destination, reason=why)  # no phone number
        try:
            self._report(sms, confirmed)
        except Exception:
            log.exception("mo.ack_report_failed")


class SmscLink(Protocol):
    name: str
    state: LinkState

    async def start(self, events: LinkEvents) -> None: ...

    async def submit(self, sms: OutboundSms) -> SubmitResult: ...

    def send(self, sms: OutboundSms, on_wire: OnWire | None = None) -> asyncio.Future[SubmitResult]: ...

    async def stop(self, *, drain: bool = True) -> None: ...

    def stats(self) -> LinkStats: ...


@dataclass(slots=True)
class LinkStats:
    """What `smsgw status` shows for a link."""

    state: LinkState
    in_flight: int = 0
    window: int = 1
    submitted: int = 0
    throttled: int = 0
    errors: int = 0
    reconnects: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    # Why the last session could not start or ended (a refused connection, a refused bind, the peer
    # closing), and when (wall clock): a link that does not come up is said why where admins look,
    # not only in the log. The reason never carries the password.
    last_error: str = ""
    last_error_at: float | None = None
    # Since when it has been down (wall clock; None while up) and how many sessions it tried since:
    # `smsc.outage.Outage`.
    down_since: float | None = None
    down_attempts: int = 0
    # The dispatcher's places when more than the window: a CIMD2 link also takes submits that wait
    # for their phone's second (`smsc.cimd2.spacing`); `status` shows the window, the wire's bound.
    places: int | None = None

    @property
    def dispatch_places(self) -> int:
        """The submits the dispatcher may hand the link at once (`places`, else the window)."""
        return self.places if self.places is not None else self.window
