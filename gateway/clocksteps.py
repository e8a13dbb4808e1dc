"""A step of the wall clock the clock check has not handled yet (`Housekeeping.check_clock`).

The check looks every few seconds; meanwhile a step forward makes every waiting validity look past
(2 days ahead: all of them), and the dispatcher, with a link up and answers freeing window places,
expired each part it took on for one ("validity period expired", never sent): a backlog of 80 in the
2 s before the check moved their validities. So the dispatcher asks here before it ends a part as
expired, and holds it while a step forward waits for the check, which then tells it (`moved`).
"""

from __future__ import annotations

from collections.abc import Callable


class StepWatch:
    """The clock check's last reading, and whom it tells of a step it handled."""

    def __init__(self, clock: Callable[[], float], elapsed: Callable[[], float], jitter: float) -> None:
        self.clock = clock  # the wall clock
        self.elapsed = elapsed  # boot time, which does not step
        self.jitter = jitter  # a step no larger than this is none (`CLOCK_STEP_SECONDS`)
        self.last: tuple[float, float] | None = None  # (wall, elapsed) at the check's last look
        # The dispatcher's: validities moved by a step, those it holds in memory too.
        self.moved: Callable[[], None] = lambda: None

    def ahead(self) -> bool:
        """Whether the wall clock has stepped forward since the check's last look: a validity that
        seems past now may be moved by the check's next look. Two clock readings, no store."""
        last = self.last
        return last is not None and self.clock() - (last[0] + self.elapsed() - last[1]) > self.jitter
