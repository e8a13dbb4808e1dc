"""The keys (060 stamp and phone, `messages.submit_result`) a link's submits were answered with, and a
key given twice, which names no one SMS.

One phone's submits go a second apart (`spacing.py`) and an honest SMSC stamps each with the second
it took it, so no two SMS to one phone share a key. An SMSC that stamps to the minute (`yymmddhhmm00`)
or whose clock is stuck answers two of them with one: their reports went to them oldest first
whatever the SMSC reported for which, and the failed one was marked delivered while the delivered
one bounced. So a repeated key names no SMS: the reports naming it are handed up under an id no SMS
has (`unmatched_id`), kept unmatched. Said once per link, by its name alone (no phone number, no
stamp: `Once`). The SMS answered with it keeps it all the same: the store, seeing a key another SMS
waits under, keeps it for both in a form no report names (`gateway.store.sharedkeys`), so that both
end `unreported`, never wrongly, after a restart too (this memory is gone then). Taken with no key,
the second ended `expired` with a notice that its delivery was unknown, and the first, still under
the key after a restart, took the next report for it, whichever SMS it was for. The store also sees
what a link cannot: a key another bind of the SMSC account gave, or one given before a restart.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import structlog

from smsc.base import DeliveryReport, Outcome, SubmitResult
from smsc.cimd2.messages import Once

log = structlog.get_logger(__name__)

# Keys remembered: a minute's submits at well over 100 a second (an SMSC stamping to the minute
# repeats within one), at some 100 bytes each.
KEPT = 20_000
TAIL_MIN = 7  # digits (no leading zeros) a report's number must have to name a phone by its end


def tail_of(digits: str) -> str | None:
    """A report's number as the end of an E.164 one: its digits without leading zeros, or None."""
    tail = digits.lstrip("0")
    return tail if len(tail) >= TAIL_MIN else None


def unmatched_id(key: str) -> str:
    """A report's key turned into an id no SMS is given (not `stamp:digits`, which the store reads as
    a CIMD2 key), that the log still masks after its colon."""
    stamp, _, digits = key.partition(":")
    return f"{stamp}-repeated:{digits}"


def _end_of(key: str) -> tuple[str, str] | None:
    """A key's stamp and the last TAIL_MIN digits of its number: those of any report tail it ends with."""
    stamp, _, digits = key.partition(":")
    return (stamp, digits[-TAIL_MIN:]) if len(digits) >= TAIL_MIN else None


class StampKeys:
    """One link's recent keys; see the module docstring."""

    def __init__(self, link: str) -> None:
        self.link = link
        self._given: OrderedDict[str, None] = OrderedDict()
        self._repeated: OrderedDict[str, None] = OrderedDict()
        # The repeated keys by their stamp and the last TAIL_MIN digits of their number: a report
        # looked for among all 20,000 took 3-11 ms of the loop; among those, one or two.
        self._ends: dict[tuple[str, str], set[str]] = {}
        self._said = Once(log.warning)

    def known(self, key: str) -> bool:
        return key in self._given

    def answered(self, result: SubmitResult) -> SubmitResult:
        """A submit's result, its key noted; one an earlier submit was answered with names no SMS from
        now on (`report`), and is said once."""
        key = result.message_id
        if result.outcome is not Outcome.ACCEPTED or key is None:
            return result
        if key not in self._given:
            self._remember(self._given, key)
            return result
        self._repeat(key)
        self._said("cimd2.submit_060_repeated", link=self.link,
                   effect="two SMS to one phone were answered with one 060 (an SMSC stamping to the minute,"
                   " or a stuck clock): their delivery reports are kept unmatched, never applied to the"
                   " wrong SMS")  # fmt: skip
        return result

    def report(self, report: DeliveryReport) -> DeliveryReport:
        """The report as handed up: under `unmatched_id` when it names a repeated key."""
        if not self._repeated:
            return report
        stamp, _, digits = report.message_id.partition(":")
        if (tail := tail_of(digits)) is None:
            ambiguous = report.message_id in self._repeated
        else:
            alike = self._ends.get((stamp, tail[-TAIL_MIN:]), ())
            ambiguous = any(key.partition(":")[2].endswith(tail) for key in alike)
        if not ambiguous:
            return report
        return replace(report, message_id=unmatched_id(report.message_id))

    def given(self, key: str) -> None:
        """`key` is an SMS's from now on (one a report answered: `gracereports.py`)."""
        self._remember(self._given, key)

    def _repeat(self, key: str) -> None:
        if key in self._repeated:
            self._repeated.move_to_end(key)
            return
        self._repeated[key] = None
        if (end := _end_of(key)) is not None:
            self._ends.setdefault(end, set()).add(key)
        if len(self._repeated) > KEPT:
            gone, _ = self._repeated.popitem(last=False)
            if (end := _end_of(gone)) is not None:
                alike = self._ends[end]
                alike.discard(gone)
                if not alike:
                    del self._ends[end]

    @staticmethod
    def _remember(keys: OrderedDict[str, None], key: str) -> None:
        keys[key] = None
        keys.move_to_end(key)
        if len(keys) > KEPT:
            keys.popitem(last=False)
