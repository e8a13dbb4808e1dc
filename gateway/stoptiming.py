"""How long each part of a stop may take, in one place for the daemon, its intake workers' supervision
(`gateway/intake_workers.py`) and the workers themselves (`gateway/intake_child.py`), so that the
bounds can be read against systemd's `TimeoutStopSec` (90 s, `systemd/smsgw.service`) together.

The daemon's stop runs the intake workers' end (WORKER_STOP_SECONDS, then the writes they sent, as
long again at most) beside the dispatcher's wait for submits on the wire (the links' longest response
timeout and 1 s), after which the outbox's sends to the relay (its own 30 s) and the links' unbind
(LINK_STOP_SECONDS, all links at once) end together. Run one after the other, the links one by one,
these bounds added up past `TimeoutStopSec` with a stalled disk (40 + 31 + 30 s and more): systemd's
SIGKILL then cut the stop's last steps, its last log lines, the status file's removal and the record
of a clean stop (the next start then checks the whole database, as after a crash). Each of these
waits now takes the lesser of its own bound and what is left of STOP_BUDGET_SECONDS (`StopBudget`),
which leaves the store's last writes, the sessions' replies (ANSWERED_SECONDS) and the close about
10 s before the SIGKILL. Those last steps need the disk: one stalled longer still meets the SIGKILL,
and a mail answered `250` is on the disk already.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

# Every bounded wait of the daemon's stop ends within this, counted from the stop's start.
STOP_BUDGET_SECONDS = 75.0
# An intake worker still running this long after it was told to stop is killed by the daemon.
WORKER_STOP_SECONDS = 20.0
# How long a worker waits for its mails being accepted while the daemon is there: their commit may be
# held (a slow fsync), and a `421` said early to a mail the daemon then commits makes its retry a second
# SMS. Just under WORKER_STOP_SECONDS, so that the idle sessions still hear `421` from the worker's own
# close, not the reset of a kill.
HELD_DRAIN_SECONDS = WORKER_STOP_SECONDS - 2.0
# After the daemon's last writes: for each mail written to be told its `250` before the rest hear `421`.
ANSWERED_SECONDS = 5.0
# Each link's unbind at stop, its submits on the wire answered first.
LINK_STOP_SECONDS = 15.0
# What a wait still gets once the budget is spent: enough to see work already done (an idle outbox, a
# link's unbind on a live connection), little enough to keep the stop within TimeoutStopSec.
FLOOR_SECONDS = 0.5
# An intake worker stopped by a signal: how long its end waits for the daemon's own stop (systemd
# signals every process of the unit) before it is taken for a worker stopped alone, and restarted.
SIGNAL_GRACE_SECONDS = 3.0


class StopBudget:
    """What is left of the stop's time: every bounded wait takes `left(...)` of its own bound."""

    def __init__(self, seconds: float = STOP_BUDGET_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._until = clock() + seconds

    def left(self, what: str, bound: float) -> float:
        """`bound`, or what is left of the budget if less: said once per wait that is cut, as the
        admin then finds work given up on (a submit sent again by the next start, a mail resent)."""
        left = max(FLOOR_SECONDS, self._until - self._clock())
        if left >= bound:
            return bound
        log.warning("daemon.stop_budget_cut", wait=what, bound=bound, given=round(left, 1), of=self.seconds)
        return left
