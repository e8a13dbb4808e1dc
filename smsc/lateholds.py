"""Whether a part's re-send must wait: the answer to its earlier submit may still sit unread behind a
paused reader.

A submit left unanswered past its response timeout resolves `Outcome.UNANSWERED` with a grace
(`SubmitResult.retry_after`, the link's `late_answer_grace_seconds`), after which the dispatcher sends
the part again. That grace is fixed when the submit resolves and runs on the clock: the time the
connection's reader then stands paused for our own sake (`smsc.stalls.ReadPause`: its deliveries held
at their bound, the rest of an MO flood waiting in TCP) is not taken out of it, although the SMSC's
answer may be waiting in TCP behind that flood. The re-send went out, the answer was read after it,
and the phone had the SMS twice: the late answer only named the duplicate.

So such a submit leaves a `LateHold` for its part: the grace once more, as a timer that does not run
while the reader is paused (`ResponseTimer`), and is credited no more pause than the reader's bound.
While it runs, once that reader stood still after the submit went unanswered, the part is `holding`:
the dispatcher does not hand it to any link but puts it back in the queue, due when the hold ends at
the latest (`left`), and due at once when it ends sooner (`when_ended`, `gateway.submits`): due again
each RECHECK_SECONDS, it was claimed and put back, two writes a second, for as long as the hold
lasted (minutes of a flood). Kept out of the links, the part takes no window place while it waits,
and a STOP, a cancel or a suspension recorded meanwhile stops it as any part in the queue. The hold
ends when the answer is read (one that took the part settles it: no re-send at all), when the session
ends (no answer can come any more) or when its timer runs out. A reader that never stood still holds
nothing: the grace on the clock is the grace it had.

A `TimedHold` is one its link ends, or that ends by itself at a deadline: a submit lost with its
session waits, at most its grace, for the reports the SMSC sends after the next login or bind
(`smsc.lostsubmits`: CIMD2's status reports, SMPP's receipts). Held here, the part keeps its turn: the
later SMS to its phone are put back behind it (`gateway.submits`), as behind any hold.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from smsc import stalls
from smsc.stalls import ReadPause, ResponseTimer

# How soon a part put back for an answer read, whose write is still to come, is looked at again; and
# the shortest wait of one put back for its hold.
RECHECK_SECONDS = 1.0

# Per event loop, each part's holds: a part id names the same SMS on every link of the process, and a
# part sent again unanswered by another link has one more (the first may still be held).
_HOLDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, list[LateHold | TimedHold]]] = (
    weakref.WeakKeyDictionary()
)


def holding(part: int) -> LateHold | TimedHold | None:
    """The hold a re-send of `part` must wait for, its earlier submit's late answer (see the module
    docstring), or None. Asked by the dispatcher of parts whose earlier submit went unanswered only."""
    try:
        holds = _HOLDS.get(asyncio.get_running_loop())
    except RuntimeError:  # no loop running: nothing is held
        return None
    for hold in holds.get(part, ()) if holds else ():
        if hold.holding:
            return hold
    return None


class _Hold:
    """What both holds share: the calls waiting for the end, and the end itself, which takes the hold
    out of its loop's registry (the dispatcher asks it by part) and makes those calls."""

    __slots__ = ()
    _calls: list[Callable[[], object]]
    _holds: dict[int, list[LateHold | TimedHold]]
    _loop: asyncio.AbstractEventLoop
    _timer: ResponseTimer | asyncio.TimerHandle
    ended: bool
    part: int

    def when_ended(self, call: Callable[[], object]) -> None:
        """`call()` in a loop turn of its own once the hold ends (the answer read, the session gone or
        the grace run out): the dispatcher makes the part it put back due at once."""
        if self.ended:
            self._loop.call_soon(call)
        else:
            self._calls.append(call)

    def end(self) -> None:
        """The answer was read, or none can come: the part may go again (or that answer settled it
        before the dispatcher looks at it again)."""
        if self.ended:
            return
        self.ended = True
        self._timer.cancel()
        mine = self._holds.get(self.part, [])
        if self in mine:
            mine.remove(self)
        if not mine:
            self._holds.pop(self.part, None)
        for call in self._calls:  # not in the caller's step: a link's reader or its session's end
            self._loop.call_soon(call)
        self._calls.clear()


class LateHold(_Hold):
    """The grace of one unanswered submit of `part` on a connection whose reader is `pause`; see the
    module docstring. Its connection calls `end` when the late answer is read, or when none can come
    any more."""

    __slots__ = (
        "_calls",
        "_grace",
        "_holds",
        "_latest",
        "_loop",
        "_pause",
        "_since",
        "_timer",
        "ended",
        "part",
        "said",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, part: int, grace: float, pause: ReadPause) -> None:
        self.part, self._pause, self._loop, self._grace = part, pause, loop, grace
        self._since = pause.total()
        # The latest its timer can run out: the grace, and the most pause it is credited (`ReadPause.bound`).
        credit = pause.limit if pause.limit is not None else grace
        self._latest = loop.time() + grace + credit + stalls.RECHECK_SECONDS
        self._calls: list[Callable[[], object]] = []
        self.ended = False
        # Whether the dispatcher has logged it put back: once a hold, not at each look (a flood's
        # doing, up to five response timeouts of them a second).
        self.said = False
        holds = _HOLDS.get(loop)
        if holds is None:
            holds = _HOLDS[loop] = {}
        self._holds = holds
        # Beside an older one's: its answer may still wait behind another link's paused reader.
        holds.setdefault(part, []).append(self)
        self._timer = ResponseTimer(loop, grace, self.end, pause, ends_session=False)

    @property
    def holding(self) -> bool:
        """Whether the part waits now: the reader stood still since the submit went unanswered."""
        pause = self._pause
        return not self.ended and (pause.paused or pause.total() > self._since)

    def left(self) -> float:
        """Seconds until the hold ends at the latest, however long the reader stays paused; past that
        (its reader's pause unbounded), the grace once more. `when_ended` says so when it ends sooner."""
        left = self._latest - self._loop.time()
        return left if left >= RECHECK_SECONDS else self._grace


class TimedHold(_Hold):
    """A hold on `part`'s re-send that ends when its link says (`end`, `end_at`), at `deadline` (loop
    time) at the latest; see the module docstring."""

    __slots__ = ("_calls", "_holds", "_loop", "_timer", "deadline", "ended", "ends_at", "part", "said")

    def __init__(self, loop: asyncio.AbstractEventLoop, part: int, deadline: float) -> None:
        self.part, self._loop, self.deadline, self.ends_at = part, loop, deadline, deadline
        self._calls: list[Callable[[], object]] = []
        self.ended = False
        self.said = False  # the dispatcher logged it put back (`LateHold.said`)
        self._holds = _HOLDS.setdefault(loop, {})
        self._holds.setdefault(part, []).append(self)
        self._timer = loop.call_at(deadline, self.end)

    @property
    def holding(self) -> bool:
        return not self.ended

    def left(self) -> float:
        """Seconds until it ends at the latest as things stand (`when_ended` says so when sooner)."""
        return max(self.ends_at - self._loop.time(), RECHECK_SECONDS)

    def end_at(self, when: float) -> None:
        """End at `when` (loop time), or at the deadline if that comes first."""
        if self.ended:
            return
        self.ends_at = min(when, self.deadline)
        self._timer.cancel()
        self._timer = self._loop.call_at(self.ends_at, self.end)
