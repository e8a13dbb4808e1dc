"""A step of the wall clock the clock check has not handled yet (`Housekeeping.check_clock`).

The check looks every few seconds; meanwhile a step forward makes every waiting validity look past
(2 days ahead: all of them), and the dispatcher, with a link up and answers freeing window places,
expired each part it took on for one ("validity period expired", never sent): a backlog of 80 in the
2 s before the check moved their validities. So the dispatcher asks here before it ends a part as
expired, and holds it while a step forward waits for the check, which then tells it (`moved`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from gateway.bitelog import FaultLog
from gateway.store.clockstep import Marks, Reading, save_reading, saved_reading

if TYPE_CHECKING:
    from gateway.store.db import Store

log = structlog.get_logger(__name__)
_faults = FaultLog(log, interval=60.0)  # a disk that stays full: one line a minute


class StepWatch:
    """The clock check's last reading, and whom it tells of a step it handled."""

    def __init__(self, clock: Callable[[], float], elapsed: Callable[[], float], jitter: float) -> None:
        self.clock = clock  # the wall clock
        self.elapsed = elapsed  # boot time, which does not step
        self.jitter = jitter  # a step no larger than this is none (`CLOCK_STEP_SECONDS`)
        self.last: tuple[float, float] | None = None  # (wall, elapsed) at the check's last look
        # The dispatcher's: validities moved by a step, those it holds in memory too.
        self.moved: Callable[[], None] = lambda: None
        # Its hand-off times (`gateway.handoffs.Handoffs.stepped_back`): the seconds of a step back, the
        # boot time of the look before it, and the time that places what was read between the two.
        self.back: Callable[[float, float, float], None] = lambda seconds, since, between: None

    def handled(self, step: float, between: float, start: bool) -> None:
        """The clock check handled a step (`step`: the seconds back, below 0 forward), its writes done;
        `last` is still the look before it. A start's look (`start`) measured from the kept reading:
        what this run holds came after the step, which was made while the daemon was stopped."""
        self.moved()
        if step > 0.0 and self.last is not None and not start:
            self.back(step, self.last[1], between)

    def ahead(self) -> bool:
        """Whether the wall clock has stepped forward since the check's last look: a validity that
        seems past now may be moved by the check's next look. Two clock readings, no store."""
        last = self.last
        return last is not None and self.clock() - (last[0] + self.elapsed() - last[1]) > self.jitter


# How often a look keeps its reading, rows written or not. What a staler one costs is bounded: the
# next start measures a step from it as well as from a fresh one (wall clock and boot time both ran
# on), and a stop keeps one at its end (`Housekeeping.check_clock`'s `keep`). Only after a crash are
# the rows written since it (the last minute) placed by their time (`seam`), which misplaces one only
# for a step of less than twice its age, made in that minute: a time off by that step, under 2 min.
# Kept at each look that found new rows, it was a write every 2 s under traffic.
KEEP_EVERY = 60.0


def seam(
    last_wall: float, wall: float, step: float, marks: Marks, start: Marks | None
) -> tuple[Marks, float]:
    """The ids up to which rows may have been written before a step the look reading `wall` and
    `marks` found (`step`: the seconds back), and the time that places those written since the
    last look, which read `last_wall` (`first_after`). Within one run the looks are seconds apart,
    and the middle of their readings does.

    The first look of a start, seeded from the kept reading (`start`: the ids read at the start,
    before anything could write), measures across the downtime, where that middle placed the rows
    the wrong way round once the daemon was stopped for longer than the step (stopped 2 hours,
    stepped back 1: an SMS accepted after the start had its validity cut by the hour and expired at
    once, and mail from the seconds before the stop waited the hour). Rows written after the start
    carry the stepped clock and come after it; those written in the seconds between the kept reading
    and the stop are placed as if no time had passed since that reading."""
    if start is None:
        return marks, (last_wall + wall) / 2
    return start, last_wall - step / 2


class KeptReading:
    """The clock check's reading, kept in the store for the daemon's next start.

    Without it, each start took its first look as its first reading, and a
    step made while the daemon was stopped (an admin correcting a clock that was behind, a crash
    during an NTP sync) was never seen. A step forward of 2 days expired every SMS queued and
    accepted with 250 at the start, bounced as "validity period expired while no link was up" 0.3 s
    before the link bound; a step back made them wait the whole step, said to be held for quiet
    hours. Seeded from the kept reading, the first look handles such a step as one made while the
    daemon ran, and `StepWatch` holds the dispatcher's expiries until it has.

    Within one boot only: boot time starts again at a boot, and the time the machine was off is
    measured by no clock that does not step, so a wall clock ahead of the kept reading may be that
    time passing, and is taken for it, as before. A wall clock behind the kept reading, though, was
    certainly stepped back: by at least the difference, which the first look then moves the waits
    and validities by (as if no time had passed meanwhile: never too far, so none ends early)."""

    def __init__(self, boot: str | None, jitter: float) -> None:
        self.boot = boot  # None: not kept (a clock a test injects for boot time, no boot id)
        self.jitter = jitter
        self.saved: tuple[float, Marks] | None = None  # (wall, ids) last kept

    def load(self, conn: sqlite3.Connection, wall: float, elapsed: float) -> Reading | None:
        """The reading the first look measures from, with the steps forward it still remembers."""
        found = saved_reading(conn) if self.boot is not None else None
        if found is None:
            return None
        boot, reading = found
        # Boot time never runs back within a boot: a kept one ahead of it is from no run of this one
        # (a VM reverted to a memory snapshot, its state directory on a disk the snapshot does not
        # hold). Taken for this boot's, the clock read as stepped forward by the difference, and
        # every validity was extended by it (30 days); it is judged as another boot's.
        if boot == self.boot and reading.elapsed <= elapsed + self.jitter:
            return reading
        if wall < reading.wall - self.jitter:  # behind the last run's clock after a reboot
            return Reading(reading.wall, elapsed, reading.marks)
        return None

    def due(self, wall: float) -> bool:
        saved = self.saved
        return self.boot is not None and (saved is None or not 0.0 <= wall - saved[0] < KEEP_EVERY)

    async def keep(self, store: Store, reading: Reading) -> None:
        """Keep `reading` in a write of its own. A failure (a full disk, the database locked by
        another process) only costs the next start a staler reading: it must not stop the chores."""
        try:
            await store.write(lambda: self.save(store.db.conn, reading))
        except Exception as exc:
            _faults.warning("clock.reading_not_kept", exc, error=str(exc))
        else:
            self.saved = (reading.wall, reading.marks)

    def save(self, conn: sqlite3.Connection, reading: Reading) -> None:
        """Keep `reading`, inside the caller's write (that of a step's moves, with them)."""
        if self.boot is not None:
            save_reading(conn, self.boot, reading)
