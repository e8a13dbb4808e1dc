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
answered the link's last submit (a zone it writes without saying so, a clock minutes off); with no
answer seen yet, by nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from smsc.base import DeliveryReport, OnWire, OutboundSms, Outcome, SubmitResult
from smsc.cimd2.messages import key_digits
from smsc.cimd2.stampkeys import StampKeys, tail_of

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


@dataclass(slots=True)
class _Awaited:
    part_id: int
    digits: str  # the phone as a submit answer's key has it (`key_digits`)
    first: float  # the SMSC's earliest stamp for it, on its clock: the second of the write
    last: float  # its latest: the response timeout
    late: asyncio.Future[SubmitResult | None]
    timer: asyncio.TimerHandle


class GraceReports:
    """One link's unanswered submits waiting out their grace, and what it knows of the SMSC's stamps."""

    def __init__(self, link: str) -> None:
        self.link = link
        self.offset = 0.0  # the SMSC's stamp minus our clock, at its last answer
        self.keys = StampKeys(link)  # the keys submits were answered with: never another's
        self._awaited: list[_Awaited] = []

    def accepted(self, key: str, answered_at: float) -> None:
        """A submit answered with `key` at `answered_at` (our clock): how far the SMSC's clock is off."""
        if (seconds := stamp_seconds(key)) is not None:
            self.offset = seconds - answered_at

    def unanswered(
        self, sms: OutboundSms, written_at: float, now: float, error: str, grace: float
    ) -> SubmitResult:
        """The result of a written submit a response timeout left unanswered (module docstring); with
        no grace configured it is TEMPORARY, as on SMPP, and written: its re-send is still logged."""
        if grace <= 0:
            return SubmitResult(Outcome.TEMPORARY, error=error, written=True)
        loop = asyncio.get_running_loop()
        late: asyncio.Future[SubmitResult | None] = loop.create_future()
        first = math.floor(written_at + self.offset) - SLACK
        awaited = _Awaited(sms.part_id, key_digits(sms.destination), first, now + self.offset + SLACK, late,
                           loop.call_later(2 * grace, self._settle, late, None))  # fmt: skip
        self._awaited.append(awaited)
        return SubmitResult(Outcome.UNANSWERED, error=error, late=late, retry_after=grace)

    def report(self, report: DeliveryReport) -> DeliveryReport:
        """A report read, as it is to be handed up (`StampKeys.report`); if it names an unanswered
        submit waiting out its grace, it answers it."""
        if (handed := self.keys.report(report)) is not report:
            return handed
        if self._awaited and not self.keys.known(report.message_id):
            self._answer(report)
        return report

    def _answer(self, report: DeliveryReport) -> None:
        stamp, _, digits = report.message_id.partition(":")
        seconds, tail = stamp_seconds(report.message_id), tail_of(digits)
        if seconds is None or tail is None:
            return
        for awaited in sorted(self._awaited, key=lambda a: -a.first):  # the latest written first
            if awaited.late.done() or not awaited.digits.endswith(tail):
                continue
            if not awaited.first <= seconds <= awaited.last:
                continue
            key = f"{stamp}:{awaited.digits}"
            if self.keys.known(key):
                return
            self.keys.given(key)
            log.warning("cimd2.unanswered_submit_reported", link=self.link, part_id=awaited.part_id,
                        message_id=key, status=report.status.value,
                        effect="taken as the SMSC's answer: the SMS is not sent again")  # fmt: skip
            self._settle(awaited.late, SubmitResult(Outcome.ACCEPTED, message_id=key))
            return

    def stop(self) -> None:
        """The link stops: no report can answer any more."""
        for awaited in list(self._awaited):
            self._settle(awaited.late, None)

    def _settle(self, late: asyncio.Future[SubmitResult | None], result: SubmitResult | None) -> None:
        for awaited in [a for a in self._awaited if a.late is late]:
            awaited.timer.cancel()
            self._awaited.remove(awaited)
        if not late.done():
            late.set_result(result)
