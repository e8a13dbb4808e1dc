"""A submit the SMSC never answered, and the status report that proves it took it all the same.

A response timeout drops the connection (the SMSC's state is unknown), but a submit already written
to it may have been taken: it resolves `Outcome.UNANSWERED` as SMPP's does, so that the dispatcher
waits out the late-answer grace before sending it again, and logs the re-send as a possible duplicate.
No submit answer can come on a closed connection; but the SMSC that took the SMS still reports it,
on the next session, by its 060 stamp and the phone (`messages.report_key`). Stored unmatched (no
part had that key), that report settled nothing: the phone that had the SMS got it a second time.

So the submit's late answer (`SubmitResult.late`) stays open for twice the grace, as SMPP's does, and
a report read meanwhile that names the submit's phone and a stamp of the time it was on the wire
answers it: the part is taken as if the SMSC had answered with that 060 (its key is the report's, in
the submit answer's form), and the report, stored before or after, matches it (an early report is
taken by its submit answer: `gateway.store.queue`). One phone's submits go a second apart
(`spacing.py`), and the SMSC stamped each no earlier than it was written, so a stamp from the second
of the write to that of the timeout names this SMS. Never one another submit was answered with: the
stamp of the phone's previous SMS, which may fall in the second before the write.

The SMSC's clock is not ours: the window is moved by how far its stamps were from our clock when it
answered the link's last submit (a zone it writes without saying so, a clock minutes off). Before any
answer (the first submits after a start) the window is our clock's, and a report is never tried
moved by whole hours: the SMSC reports what the last run sent, hours-old reports held while we were
down, and for hourly alerts to one phone the report of the SMS sent an hour earlier, read before or
after the new submit's write, fell in the window moved by an hour. It settled the new submit under
the old SMS's key: that SMS never went, lost. A wrong match loses an SMS, a missed one sends it twice;
so an SMSC stamping its local time with no zone is matched once an answer taught the link its offset,
and its first unanswered submit after a start goes again after the grace though its report came: a
possible duplicate, logged as one.

A submit written to a connection the SMSC then closed, before its answer, is in the same doubt: the
SMSC read it, and may have taken it. It was sent again at once, and an SMSC that closed its session
after taking four submits, and reported them delivered first thing on the next one, had each reach
the phone twice. So its late answer is awaited as one the timeout cut off is (`SubmitResult.late` on
a TEMPORARY written result), and its re-send waits on a `lateholds.TimedHold`: until a bind of the
account has been logged in the link's `lost_submit_settle_seconds` since the loss, the grace at the
most. It keeps its turn, the later SMS to its phone behind it (F5, `gateway.submits`), as on SMPP;
waiting the whole grace, every link drop held the SMS on the wire 5 minutes and let the phone's later
SMS pass it. A report that settles it ends the hold and it is not sent again. The settle is tens of
seconds (30 by default), not the few an SMSC takes to send what it owes after a login: a CIMD2 status
report is a delivery report, it comes when the phone has the SMS, and a phone that is on has it within
tens of seconds; re-sent 3 s after the login, an SMS whose report came 6 s after it reached the phone
twice. 0 sends it again at the login, logged as a possible duplicate. A report read before
its submit went unanswered (on the same session, before the SMSC closed it, or on another bind
before the timeout) is kept a while, unmatched: a submit that goes unanswered later looks at those.

Binds of one SMSC account (`accountspacing.account_of`) share what they await and the reports they
read: the SMSC reports an SMS on whichever bind it likes, and a report of a submit left unanswered on
one bind, read on the other, settled nothing, and the SMS went again after the grace. The awaiting,
the holds and what the binds share are `smsc.lostsubmits`', which SMPP's receipts use too; the 060
stamps and keys are CIMD2's, here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from smsc.base import DeliveryReport, OnWire, OutboundSms, Outcome, SubmitResult
from smsc.cimd2.accountspacing import account_of
from smsc.cimd2.messages import key_digits
from smsc.cimd2.stampkeys import StampKeys, tail_of
from smsc.lostsubmits import Account, Awaited, LostSubmits
from smsc.settings import LinkSettings

log = structlog.get_logger(__name__)

SLACK = 1.0  # seconds either side of the window: the stamp's resolution


def stamp_seconds(key: str) -> float | None:
    """The epoch seconds of a key's 060 digits (yymmddhhmmss) read as UTC, or None."""
    stamp = key.partition(":")[0]
    try:
        return datetime.strptime(stamp, "%y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def noting(wrote: list[float], clock: Callable[[], float], on_wire: OnWire | None) -> OnWire:
    """A submit's `written` callback that also notes in `wrote` when (on `clock`) it was written."""

    def written() -> None:
        wrote.append(clock())
        if on_wire is not None:
            on_wire()

    return written


class GraceReports(LostSubmits[DeliveryReport]):
    """One link's unanswered submits waiting out their grace, and what it knows of the SMSC's stamps;
    `account` names the SMSC account whose binds share them (module docstring, `smsc.lostsubmits`)."""

    def __init__(self, link: str, account: object = None, settle: float = 30.0) -> None:
        super().__init__(link, account, settle)  # a lost submit waits `settle` for its report after a login
        self.offset = 0.0  # the SMSC's stamp minus our clock, at its last answer
        self.keys = StampKeys(link)  # the keys submits were answered with: never another's

    @classmethod
    def of(cls, cfg: LinkSettings) -> GraceReports:
        """A CIMD2 link's, shared with the binds of its SMSC account."""
        return cls(cfg.name, account_of(cfg), cfg.lost_submit_settle_seconds)

    def accepted(self, key: str, answered_at: float) -> None:
        """A submit answered with `key` at `answered_at` (our clock): how far the SMSC's clock is off."""
        if (seconds := stamp_seconds(key)) is not None:
            self.offset = seconds - answered_at

    def unanswered(
        self,
        sms: OutboundSms,
        written_at: float,
        now: float,
        error: str,
        grace: float,
        *,
        lost_behind: int | None = None,
        timed_out: bool = True,
    ) -> SubmitResult:
        """The result of a written submit left unanswered: by a response timeout, UNANSWERED; by a
        connection closed before its answer (not `timed_out`), TEMPORARY and written (`lost_behind`
        as the session says), with the grace to wait and the late answer a report may still give
        (module docstring). With no grace configured both are TEMPORARY and written, as on SMPP."""
        if grace <= 0:
            return SubmitResult(Outcome.TEMPORARY, error=error, written=True, lost_behind=lost_behind)
        loop = asyncio.get_running_loop()
        late: asyncio.Future[SubmitResult | None] = loop.create_future()
        first = math.floor(written_at + self.offset) - SLACK
        awaited = Awaited(self, sms.part_id, key_digits(sms.destination), first, now + self.offset + SLACK,
                          late, loop.call_later(2 * grace, self._settle, late, None))  # fmt: skip
        # Its session gone: held until a bind is up again and settled; read before it went
        # unanswered, the oldest first, as stamped (module docstring).
        self._await(awaited, grace, lost=not timed_out)
        if timed_out:
            return SubmitResult(Outcome.UNANSWERED, error=error, late=late, retry_after=grace)
        return SubmitResult(Outcome.TEMPORARY, error=error, written=True, lost_behind=lost_behind, late=late,
                            retry_after=grace)  # fmt: skip

    def report(self, report: DeliveryReport) -> DeliveryReport:
        """A report read, as it is to be handed up (`StampKeys.report`); if it names an unanswered
        submit waiting out its grace, on this bind or another of the account, it answers it; if it
        names no submit answered, it is kept for one that goes unanswered later."""
        if (handed := self.keys.report(report)) is not report:
            return handed
        shared = self._shared()
        if self._known(report.message_id, shared):
            return report
        if matches := self._matches(report, shared):
            self._take(report, matches[0])
        else:
            shared.read.append(report)
        return report

    @staticmethod
    def _known(key: str, shared: Account[DeliveryReport]) -> bool:
        """Whether a bind of the account answered a submit with `key`, or a report gave it one."""
        return any(member.keys.known(key) for member in shared.members)

    def _matches(
        self, report: DeliveryReport, shared: Account[DeliveryReport], only: Awaited | None = None
    ) -> list[Awaited]:
        """The submits awaited (`only` that one) that `report` names as stamped, the latest written
        first; never moved by whole hours (module docstring). Empty when none, or when the key it would
        give is another SMS's already."""
        stamp, _, digits = report.message_id.partition(":")
        seconds, tail = stamp_seconds(report.message_id), tail_of(digits)
        if seconds is None or tail is None:
            return []
        candidates = [a for a in (shared.awaited if only is None else [only]) if a.phone.endswith(tail)]
        candidates = [a for a in candidates if not a.late.done()]
        candidates.sort(key=lambda a: -a.first)  # the latest written first
        found = [a for a in candidates if a.first <= seconds <= a.last]
        if not found or self._known(f"{stamp}:{found[0].phone}", shared):
            return []
        return found

    def _take(self, report: DeliveryReport, awaited: Awaited) -> None:
        """Settle `awaited` as taken under `report`'s key."""
        key = f"{report.message_id.partition(':')[0]}:{awaited.phone}"
        owner = awaited.owner
        assert isinstance(owner, GraceReports)  # an account's binds are of one protocol
        owner.keys.given(key)
        log.warning("cimd2.unanswered_submit_reported", link=owner.link, part_id=awaited.part_id,
                    message_id=key, status=report.status.value, read_by=self.link,
                    effect="taken as the SMSC's answer: the SMS is not sent again")  # fmt: skip
        owner._settle(awaited.late, SubmitResult(Outcome.ACCEPTED, message_id=key))
