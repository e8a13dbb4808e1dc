"""When this process's links wrote each part's submit: when the phone may have had it since, for the answer
wait (`gateway.conversations.reached`, `waiting`).

The dispatcher claims parts up to two windows ahead of its links (`gateway.claimahead`): a part may sit
claimed for seconds behind a slow or throttled link before it goes, so its claim (`parts.claimed_at`) is
not when it went. Counted from its claim, an answer to an older SMS that came before the newer one had
even reached the SMSC waited for it, and went to its user, of whatever company. Kept here in memory, on
the loop, by the dispatcher: no write per part. A part claimed and not written yet is not here: the phone
cannot have it, unless an earlier submit of it may have reached it (its note says so). After a restart
nothing is here: its claim time is all that is known (a part the last run left claimed is claimed again,
its note saying it may have reached the phone).

Each part's entry holds two times, since they answer two questions. The first submit the phone may have
(the first written since the part was claimed with no such note): an answer sooner than `REPLY_SECONDS`
after it is to an older SMS. The last submit: a part that waits to go again holds answers as long as that
submit could stay unanswered (`waiting.wait_seconds`); its re-send may still be taken and say the phone
has it, while counted from the first, a re-send cut off again on a flapping link held no answer at all,
which went at once to the SMS the phone got before, another company's maybe.

Both are wall-clock readings, like the stored claim time, and a step of the clock back moves them as it
moves that (`stepped_back`): left on the clock before it, an answer after a step back of a minute read
as coming a minute before its SMS went, and was taken for an older SMS's.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

from gateway.store.records import ClaimedPart
from smsc.outage import boottime

# Entries of parts no longer in flight nor cut off are dropped as their submits end; a part whose state
# this cannot see (one that expired waiting to go again) is dropped once its last hand-off is this old:
# longer than any answer waits for a submit (`waiting.wait_seconds`: twice a link's response time-out and
# its late answer's grace).
FORGET_SECONDS = 24 * 3600.0
_PRUNE_AT = 10_000


@dataclass(slots=True)
class Handed:
    """A part's hand-offs: the first the phone may have (None: one before this process started) and
    the last, each with the boot time it was read at (which side of a clock step it came, `stepped_back`)."""

    first: float | None
    last: float
    first_at: float = 0.0
    last_at: float = 0.0


class Handoffs:
    """The hand-offs of one store's parts by this process's dispatcher."""

    def __init__(self) -> None:
        self.parts: dict[int, Handed] = {}
        self._limit = _PRUNE_AT
        self._out: dict[int, bool] = {}  # part id -> its submit written yet, until the submit ends
        self.elapsed: Callable[[], float] = boottime  # the clock check's (`gateway.daemon`)

    def claimed(self, parts: Iterable[ClaimedPart], now: float) -> None:
        """Parts just claimed: one whose note says no earlier submit may have reached the phone is not
        on it, whatever an earlier hand-off said (a throttle handed it back unsent)."""
        for part in parts:
            if not part.maybe_sent:
                self.parts.pop(part.id, None)
        if len(self.parts) > self._limit:
            old = now - FORGET_SECONDS
            self.parts = {pid: h for pid, h in self.parts.items() if h.last > old}
            self._limit = max(_PRUNE_AT, 2 * len(self.parts))

    def handing(self, part: ClaimedPart, clock: Callable[[], float]) -> Callable[[], None]:
        """The part is being given to its link: the callback the link calls once it writes the submit.
        A link may hold a part a while before it writes it (CIMD2: its phone's second,
        `smsc.cimd2.spacing`), letting parts to other phones go first, so only the link can say which
        of the parts it holds are on the wire."""
        self._out.setdefault(part.id, False)
        return lambda: self._went(part, clock(), self.elapsed())

    def _went(self, part: ClaimedPart, now: float, at: float) -> None:
        self._out[part.id] = True
        known = self.parts.get(part.id)
        if part.maybe_sent and known is not None:
            known.last, known.last_at = now, at
        else:
            self.parts[part.id] = Handed(None if part.maybe_sent else now, now, at, at)

    def stepped_back(self, seconds: float, since: float, between: float) -> None:
        """The clock check handled a step back of `seconds` (`gateway.clocksteps.StepWatch.handled`):
        the times read before it move back by the whole step, as the parts' claim times do
        (`gateway.store.clockstep.shift_parts`). Those read before the check's last look (`since`, its
        boot time) came before the step; those read since are placed by their time, as the store's
        rows written since are (`first_after`): one below `between` already reads the stepped clock."""
        for handed in self.parts.values():
            if handed.first is not None and (handed.first_at <= since or handed.first >= between):
                handed.first -= seconds
            if handed.last_at <= since or handed.last >= between:
                handed.last -= seconds

    def ended(self, part: ClaimedPart | None, cut_off: Container[int]) -> None:
        """Its submit was answered or ended; one in `cut_off` (unanswered: the phone may have it, and it
        goes again) keeps its entry, and so does one whose submit was never written (what an earlier
        submit of it left still holds)."""
        if part is not None and self._out.pop(part.id, False) and part.id not in cut_off:
            self.parts.pop(part.id, None)


# By the store's path, as `waiting` keeps its own: the dispatcher's, while one runs in this process.
_running: dict[str, Handoffs] = {}


def watch(path: str) -> Handoffs:
    """A dispatcher starts on the store at `path`: a new record (what an earlier one had is not this
    run's: the parts it left claimed go again, their notes saying they may have reached the phone)."""
    handoffs = _running[path] = Handoffs()
    return handoffs


def unwatch(path: str, handoffs: Handoffs) -> None:
    """The dispatcher stopped: none hands parts any more."""
    if _running.get(path) is handoffs:
        del _running[path]


def of(path: str) -> Handoffs | None:
    """The running dispatcher's record; None when none runs here (the claim time is then taken)."""
    return _running.get(path)
