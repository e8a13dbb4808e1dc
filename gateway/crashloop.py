"""When a supervised worker's crashes make a loop: what `/healthz` and `smsgw status` say of it.

One crash is not a loop: the worker is back within a second. Three within 5 minutes are, until the
worker has gone 60 s without one: twice the supervisor's longest back-off, after which the
supervisor too takes the next crash for a fresh fault and restarts it after its shortest pause. The
crashes before such a quiet minute belong to a loop that ended: counted in the window, a worker that
had recovered from a loop at its start was called looping again at its next single crash.

Kept apart from `gateway.supervisor`, which reads it for `Worker.snapshot`, and from the web
panel, so that a daemon without the panel reads it too.
"""

from __future__ import annotations

from collections.abc import Iterable

LOOP_CRASHES = 3  # this many crashes of one worker within LOOP_WINDOW_SECONDS: a loop
LOOP_WINDOW_SECONDS = 300.0
LOOP_OVER_SECONDS = 60.0  # 2 x supervisor.BACKOFF_MAX_SECONDS (tests hold them together)


def loop_crashes(crashed_at: Iterable[float], now: float) -> int:
    """How many crashes make the loop a worker is in at `now` (monotonic, the supervisor's clock),
    else 0: those within LOOP_WINDOW_SECONDS after the last quiet LOOP_OVER_SECONDS."""
    run: list[float] = []
    for at in crashed_at:
        if now - at > LOOP_WINDOW_SECONDS:
            continue
        if run and at - run[-1] >= LOOP_OVER_SECONDS:
            run = []  # the worker ran a quiet minute: the loop before it is over
        run.append(at)
    if len(run) >= LOOP_CRASHES and now - run[-1] < LOOP_OVER_SECONDS:
        return len(run)
    return 0
