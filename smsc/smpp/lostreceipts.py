"""A submit_sm whose answer never came, and the delivery receipt that proves the SMSC took it.

A submit written to a connection that then went (the SMSC dropped it, a reset, our close after a
window of submits unanswered) may have been taken: no submit_sm_resp can come on a closed connection,
and the part was sent again a second after the next bind. The SMSC that took it still sends its
receipt, on that session or the next, under the message id we never learnt: stored unmatched
(`dlr.unmatched`), it settled nothing, and the phone had the SMS twice. An SMSC frozen for a minute
took the submits left in its socket when it woke, after our close, and its receipts came 0.2 s later.

So such a submit waits for its receipt as CIMD2's wait for their status reports (`smsc.lostsubmits`):
its part keeps its turn, its re-send held until the link's `lost_submit_settle_seconds` after the next
bind (after the loss, with another bind of the account up), the grace at the most; a submit past its
response timeout whose session then went keeps its late answer open the rest of its window the same
way. A receipt read meanwhile answers it when all of these hold:

- its id is none a submit_sm_resp gave (on any bind of the account): those are other SMS';
- it names the part's phone (its source_addr, the end of our destination_addr);
- its `submit date:` (a minute, mostly) is no earlier than the minute of the write and no later than
  the receipt itself, on the SMSC's clock: the SMSC stamps a submit when it reads it, and one frozen
  read it a minute after our close;
- its `text:` quote, when it gives one, begins the part's text (letters and digits compared);
- no other SMS to that phone was answered since that minute began: a receipt of it whose id we no
  longer know would look the same; and only one part awaited is named so. Either way nothing is
  settled: a wrong match loses an SMS, a missed one sends it twice (logged as a possible duplicate).

The part is then taken as if the SMSC had answered with the receipt's id, and the receipt, stored
before or after, matches it (`gateway.store.queue` takes an early one), delivered or failed as it says.

The SMSC's clock: a receipt of an SMS answered here says when the SMSC stamped it, between our write
and its answer; when that shows a clock off by more than a minute (a zone written without saying so),
the window moves by what it shows. Before that, the window is our clock's, as CIMD2's: an SMSC on
another clock has its first lost submits after a start sent again, as possible duplicates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable
from itertools import takewhile

import structlog

from smsc.base import DeliveryReport, OutboundSms, Outcome, SubmitResult
from smsc.cimd2.accountspacing import account_of
from smsc.cimd2.messages import key_digits
from smsc.cimd2.stampkeys import tail_of
from smsc.lostsubmits import Account, Awaited, LostSubmits
from smsc.receipts import parse_receipt_date, parse_receipt_text, receipt_text
from smsc.settings import LinkSettings

log = structlog.get_logger(__name__)

SLACK = 2.0  # seconds either side of the window: clocks a little apart
# Ids our submits were answered with, kept at most: a receipt of one is never a lost submit's, and it
# says how far the SMSC's clock is off.
KNOWN_KEPT = 4096
LEARN_EVERY = 60.0  # seconds between readings of that offset: a receipt's date, not every receipt's
# How long the last answer to a phone counts against a receipt naming it (a minute, the window of an
# SMS awaited, and the clock's offset): past that no awaited submit can be stamped in its minute.
PHONE_SPARE = 180.0


def quoted(text: str) -> str:
    """A text as its receipt's quote is compared: letters and digits, ASCII, case folded. The SMSC
    quotes in its own charset, and what it cannot write becomes "?" or some other octet."""
    return "".join(c for c in text.casefold() if c.isascii() and c.isalnum())


class ReadReceipt:
    """A receipt with what a lost submit is matched by (module docstring), read from its text only
    once a submit is awaited: most receipts (every one after a restart) name none, and a receipt
    flood paid for a second reading of each."""

    __slots__ = (
        "_data",
        "_data_coding",
        "_read",
        "quote",
        "read_at",
        "report",
        "resolution",
        "stamp",
        "tail",
    )

    def __init__(self, report: DeliveryReport, data: bytes, data_coding: int, read_at: float) -> None:
        self.report, self._data, self._data_coding, self.read_at = report, data, data_coding, read_at
        self._read = False
        self.tail: str | None = None  # its phone's digits as the end of an E.164 number
        self.stamp: float | None = None  # its `submit date:`, epoch seconds on the SMSC's clock
        self.resolution = 1.0  # 60 for a date to the minute, 1 to the second
        self.quote = ""  # its `text:` as `quoted`, "" without one

    def read(self) -> ReadReceipt:
        if not self._read:
            self._read = True
            text = receipt_text(bytes(self._data), self._data_coding) if self._data else ""
            fields = parse_receipt_text(text) if text else {}
            submitted, phone = fields.get("submit_date"), self.report.destination
            stamp = parse_receipt_date(submitted)
            self.tail = tail_of(key_digits(phone)) if phone else None
            self.stamp = stamp.timestamp() if stamp is not None else None
            self.resolution = 60.0 if submitted is not None and len(submitted) == 10 else 1.0
            self.quote = quoted(fields.get("text") or "")
            self._data = b""
        return self


class ReceiptGrace(LostSubmits[ReadReceipt]):
    """One SMPP link's submits awaiting their receipt, shared with the binds of its SMSC account."""

    def __init__(self, cfg: LinkSettings, clock: Callable[[], float]) -> None:
        super().__init__(cfg.name, ("smpp", *account_of(cfg)), cfg.lost_submit_settle_seconds)
        self.grace = cfg.late_answer_grace_seconds
        self.clock = clock  # the daemon's, epoch seconds: what submit dates are compared with
        self.known: OrderedDict[str, tuple[float, float] | None] = OrderedDict()  # id -> (written, answered)
        self.answered_to: dict[str, float] = {}  # phone digits -> when a submit to it was last answered
        self.lo = self.hi = 0.0  # the SMSC's stamp minus our clock: at least, at most (module docstring)
        self.learnt_at = -math.inf
        self.stopped = False

    def accepted(self, sms: OutboundSms, message_id: str | None, written_at: float) -> None:
        """A submit of `sms` written at `written_at` was answered with `message_id` now."""
        now = self.clock()
        phone = key_digits(sms.destination)
        self.answered_to.pop(phone, None)
        self.answered_to[phone] = now
        if len(self.answered_to) > KNOWN_KEPT:
            # Oldest first (each answer moves its phone to the end): only the stale head goes. Rebuilt
            # whole, a link answering more phones than this in the window paid for all of them at
            # every answer, on the event loop.
            since = now - 2 * self.grace - PHONE_SPARE - max(abs(self.lo), abs(self.hi))
            stale = [p for p, _ in takewhile(lambda item: item[1] < since, self.answered_to.items())]
            for p in stale:
                del self.answered_to[p]
        if message_id:
            self._know(message_id, (written_at, now))

    def _know(self, message_id: str, times: tuple[float, float] | None) -> None:
        self.known[message_id] = times
        if len(self.known) > KNOWN_KEPT:
            self.known.popitem(last=False)

    def lost(self, sms: OutboundSms, written_at: float, result: SubmitResult) -> SubmitResult:
        """`result` of a submit written at `written_at` whose connection went before its answer, with
        the late answer its receipt may still give (module docstring)."""
        if self.stopped or self.grace <= 0:
            return result
        late: asyncio.Future[SubmitResult | None] = asyncio.get_running_loop().create_future()
        self._awaiting(sms, written_at, late)
        return dataclasses.replace(result, late=late, retry_after=self.grace)

    def carry(self, sms: OutboundSms, written_at: float, late: asyncio.Future[SubmitResult | None]) -> bool:
        """A submit past its response timeout whose session went: its late answer (`late`) may still
        come as a receipt while its part is held (`_awaiting`). False when none is awaited (the link
        stops)."""
        if self.stopped or self.grace <= 0 or late.done():
            return False
        self._awaiting(sms, written_at, late)
        return True

    def _awaiting(
        self, sms: OutboundSms, written_at: float, late: asyncio.Future[SubmitResult | None]
    ) -> None:
        """Await `late`'s receipt while its part's re-send is held, and no longer: once the part goes
        again (the settle after the next bind, the grace at the most) a later receipt is a copy's.
        Kept open for twice the grace, it kept a long SMS from moving (`LinkChoice.moving`) off an SMSC
        that binds and answers no submit, its parts sent to it again and again."""
        timer = asyncio.get_running_loop().call_later(2 * self.grace, self._settle, late, None)
        first = written_at + self.lo - SLACK
        awaited = Awaited(
            self, sms.part_id, key_digits(sms.destination), first, math.inf, late, timer, sms.text
        )
        self._await(awaited, self.grace, lost=True, look_back=False)
        if awaited.hold is not None:
            awaited.hold.when_ended(lambda: None if late.done() else self._settle(late, None))

    def look_back(self) -> None:
        """The submits lost with a session are all awaited: a receipt read before the loss that names
        one of them, and one only, answers it."""
        shared = self._shared()
        for read in list(shared.read):
            matches = self._matches(read, shared)
            if len({a.part_id for a in matches}) == 1:
                shared.read.remove(read)
                self._take(read, matches[0])

    def report(self, report: DeliveryReport, data: bytes, data_coding: int) -> None:
        """A receipt read (`data` its short_message or message_payload): one of an SMS answered here
        teaches the SMSC's clock; one of no SMS answered answers a lost submit it names, or is kept for
        one lost later (module docstring)."""
        shared = self._shared()
        for member in shared.members:
            assert isinstance(member, ReceiptGrace)  # an account's binds are of one protocol
            if report.message_id in member.known:
                member.learn(report.message_id, data, data_coding)
                return
        read = ReadReceipt(report, data, data_coding, self.clock())
        if not shared.awaited:
            shared.read.append(read)  # read once a submit is lost
            return
        matches = self._matches(read, shared)
        if len({a.part_id for a in matches}) > 1:
            log.warning("smpp.lost_submit_receipt_ambiguous", link=self.link, message_id=report.message_id,
                        parts=sorted({a.part_id for a in matches}),
                        effect="settles none: each goes again, a possible duplicate")  # fmt: skip
        elif matches:
            self._take(read, matches[0])
        else:
            shared.read.append(read)

    def learn(self, message_id: str, data: bytes, data_coding: int) -> None:
        """The receipt of a submit answered with `message_id`: its date says how far the SMSC's clock is
        off, between the write and the answer; kept only when more than that can explain (module
        docstring)."""
        times = self.known.get(message_id)
        now = self.clock()
        if times is None or not data or now - self.learnt_at < LEARN_EVERY:
            return
        submitted = parse_receipt_text(receipt_text(bytes(data), data_coding)).get("submit_date")
        if (stamp := parse_receipt_date(submitted)) is None or submitted is None:
            return
        self.learnt_at = now
        seconds, resolution = stamp.timestamp(), 60.0 if len(submitted) == 10 else 1.0
        lo, hi = seconds - times[1] - SLACK, seconds + resolution - times[0] + SLACK
        self.lo, self.hi = (0.0, 0.0) if lo <= 0 <= hi else (lo, hi)

    def _matches(
        self, report: ReadReceipt, shared: Account[ReadReceipt], only: Awaited | None = None
    ) -> list[Awaited]:
        """The lost submits awaited (`only` that one) that `report` names, the latest written first;
        none when another SMS to the phone may be the one it names (module docstring)."""
        stamp, tail = report.read().stamp, report.tail
        if stamp is None or tail is None:
            return []
        found: list[Awaited] = []
        for awaited in shared.awaited if only is None else [only]:
            owner = awaited.owner
            assert isinstance(owner, ReceiptGrace)
            if awaited.late.done() or not awaited.phone.endswith(tail):
                continue
            if stamp + report.resolution <= awaited.first or stamp > report.read_at + owner.hi + SLACK:
                continue  # stamped before its write, or after the receipt came
            if report.quote and not quoted(awaited.text).startswith(report.quote):
                continue
            for member in shared.members:
                assert isinstance(member, ReceiptGrace)
                answered = member.answered_to.get(awaited.phone)
                if answered is not None and answered + member.hi + SLACK >= stamp:
                    return []  # another SMS to the phone, answered since that minute began, may be it
            found.append(awaited)
        found.sort(key=lambda a: -a.first)
        return found

    def _take(self, report: ReadReceipt, awaited: Awaited) -> None:
        """Settle `awaited` as taken under the receipt's id."""
        owner, message_id = awaited.owner, report.report.message_id
        assert isinstance(owner, ReceiptGrace)
        owner._know(message_id, None)  # its next receipt names this SMS, and no other
        log.warning("smpp.lost_submit_receipt", link=owner.link, part_id=awaited.part_id,
                    message_id=message_id, status=report.report.status.value, read_by=self.link,
                    effect="taken as the SMSC's answer: the SMS is not sent again")  # fmt: skip
        owner._settle(awaited.late, SubmitResult(Outcome.ACCEPTED, message_id=message_id))

    def stop(self) -> None:
        """The link stops: no receipt can answer its submits any more, nor those lost as it stops."""
        self.stopped = True
        super().stop()
