"""A part whose submits the SMSC takes and never answers, and the hold that ends its re-sends.

An unanswered submit may have reached the SMSC, and the phone: the part waits out the link's
late-answer grace and goes again (`gateway.late_answers`). An SMSC that takes one particular SMS
and never answers it got it again after each grace, backing off, until its MAX_ATTEMPTS were spent:
some 50 copies within its validity (6 of them in the first 3 minutes). Such sends are
counted as the sessions lost with a part on the wire are (`gateway.outcomes`): in a row, and an
answer of any kind (in time or late, an acceptance, a refusal, a fault for now) starts the count
again. At HOLD_AFTER_LOSSES the part waits on `hold` with a reason that says so, once other submits
on its link were answered meanwhile; its late answer is still taken (`LateAnswers.watch_held`).
An SMSC that answers nothing at all is no proof against one SMS: its sessions end as the link's
window goes unanswered (`smsc.smpp.submits`), and each of its waiting SMS backs off on, held only
at twice as many sends (as a session killer without that proof is), not all of them at the fifth.

Kept by this process only, as the lost sessions are: after a restart a part starts afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from gateway.store.partnotes import AWAITING_LATE, LINK_LOST
from smsc.base import Outcome, SubmitResult

if TYPE_CHECKING:
    from gateway.late_answers import LateAnswers
    from gateway.store.db import ClaimedPart

# The hold reason; its note (`AWAITING_LATE`) says the part may have reached the phone: should it
# expire held, its bounce says delivery unknown, and its `queue retry` is a possible duplicate.
SILENT_SMSC = (
    "held: the SMSC answered none of the {} submits of this SMS in a row, link {}"
    f" (unanswered, held instead of {AWAITING_LATE}): it may have reached the phone each time"
    " (queue retry sends it again)"
)
# Parts whose unanswered sends are counted, kept at most: the oldest are forgotten first.
SILENT_KEPT = 4096


class SilentSends:
    """Per part, its submits left unanswered in a row, and the answers its link gave meanwhile."""

    def __init__(self) -> None:
        self.sends: OrderedDict[int, int] = OrderedDict()
        # part id -> link -> the link's answered submits at the first of those sends by it
        self.answered_before: dict[int, dict[str, int]] = {}

    def sent(self, part_id: int, link: str, answered: int) -> int:
        """One more submit of the part went unanswered on `link`, which had answered `answered`
        submits so far: how many in a row now."""
        sends = self.sends.pop(part_id, 0) + 1
        self.sends[part_id] = sends
        self.answered_before.setdefault(part_id, {}).setdefault(link, answered)
        if len(self.sends) > SILENT_KEPT:
            self.forget(next(iter(self.sends)))
        return sends

    def to_hold(self, part_id: int, link: str, answered: int, hold_after: int) -> bool:
        """Whether the part's unanswered sends call for a human: `hold_after` of them with other
        submits answered on `link` meanwhile, twice as many without (module docstring)."""
        sends = self.sends.get(part_id, 0)
        others_went = answered > self.answered_before.get(part_id, {}).get(link, answered)
        return sends >= hold_after and (others_went or sends >= 2 * hold_after)

    def forget(self, part_id: int) -> None:
        """The SMSC answered a submit of the part, or it settled or went on hold: count afresh."""
        self.sends.pop(part_id, None)
        self.answered_before.pop(part_id, None)


def attempts_spent(late: LateAnswers, name: str, part: ClaimedPart, result: SubmitResult) -> str:
    """The hold reason of a part whose MAX_ATTEMPTS are spent. One whose last send was lost on the
    wire or unanswered, or whose note said an earlier one may have reached the phone, keeps a
    maybe-sent note: held without it, it expired with a bounce saying it could not be sent after
    as many sends (`QueueRepo.expire_batch` reads the note), and its `queue retry` went out unlogged."""
    spent = f"{part.attempts} attempts failed; last: {result.error}"
    if result.written:
        note = LINK_LOST
    elif result.outcome is Outcome.UNANSWERED:
        note = f"unanswered, held instead of {AWAITING_LATE}"
    elif part.maybe_sent:
        note = f"an earlier attempt went unanswered or was cut off, held instead of {AWAITING_LATE}"
    else:  # refused, and no note says an earlier send may have reached the phone
        return spent
    # Its next send, after a `queue retry`, is logged as a possible duplicate (`LateAnswers`).
    late.may_have(part.id, name)
    return f"{spent}; {note}: it may have reached the phone (queue retry sends it again)"
