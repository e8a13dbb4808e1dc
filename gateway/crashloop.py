"""When a supervised worker's crashes make a loop: what `/healthz` and `smsgw status` say of it.

One crash is not a loop: the worker is back within a second. Three within 5 minutes are, until the
worker has run 60 s since its last restart: twice the supervisor's longest back-off. Only a run
forgives: measured crash to crash, the gap held the supervisor's pause too, and a worker that
crashed 35 s after every start (65 s apart with the 30 s pause, down nearly half the time) was never
called looping while the supervisor itself held it for one (its back-off never reset). A crash after
a run of 60 s is a fresh fault to both: the supervisor restarts it after its shortest pause and the
crashes before it are forgotten (`note_crash`), so a worker that had recovered from a loop at its
start is not called looping again at its next single crash.

Kept apart from `gateway.supervisor`, which reads it for `Worker.snapshot`, and from the web
panel, so that a daemon without the panel reads it too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol

LOOP_CRASHES = 3  # this many crashes of one worker within LOOP_WINDOW_SECONDS: a loop
LOOP_WINDOW_SECONDS = 300.0
LOOP_OVER_SECONDS = 60.0  # 2 x supervisor.BACKOFF_MAX_SECONDS (tests hold them together)


class Crashing(Protocol):
    """What of a supervised worker its crash record is (`gateway.supervisor.Worker`)."""

    crashed_at: deque[float]
    up_since: float | None


def note_crash(worker: Crashing, started: float, now: float, *, counted: bool = True) -> bool:
    """Record a crash at `now` of the run begun at `started`; whether that run lasted long enough
    (LOOP_OVER_SECONDS) to be a fresh fault, forgiving the crashes before it.

    `counted` False: a retry while another process holds the database, no crash of the worker
    (counted, a backup's minute made /healthz say "crash-looping")."""
    worker.up_since = None  # down until the supervisor starts it again: its pause is no run
    fresh = now - started > LOOP_OVER_SECONDS
    if fresh:
        worker.crashed_at.clear()
    if counted:
        worker.crashed_at.append(now)
    return fresh


def loop_crashes(crashed_at: Iterable[float], now: float, up_since: float | None = None) -> int:
    """How many crashes make the loop a worker is in at `now` (monotonic, the supervisor's clock),
    else 0: those within LOOP_WINDOW_SECONDS, unless the worker, up again since `up_since` (None:
    down, waiting to restart), has run LOOP_OVER_SECONDS."""
    if up_since is not None and now - up_since >= LOOP_OVER_SECONDS:
        return 0
    recent = [at for at in crashed_at if now - at <= LOOP_WINDOW_SECONDS]
    return len(recent) if len(recent) >= LOOP_CRASHES else 0


def note_stop(worker: Crashing) -> None:
    """The worker stopped on purpose (the daemon's stop): no run, and no loop to report. Its last
    start left `up_since` set, and a stop within LOOP_OVER_SECONDS of it read "crash-looping ...
    running again" in the snapshot and /healthz."""
    worker.up_since = None
    worker.crashed_at.clear()
