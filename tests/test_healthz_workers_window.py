"""When a worker's crashes make a loop for /healthz (`gateway.web.healthworkers`): three within 5
minutes, until it has run a minute without one. Judged at given times (the supervisor's monotonic
clock) on the record the supervisor keeps of each crash; tests/test_healthz_workers.py has the
real daemon.
"""

from __future__ import annotations

from gateway.supervisor import Worker
from gateway.web.healthworkers import LOOP_OVER_SECONDS, LOOP_WINDOW_SECONDS, workers_trouble


def test_the_loop_is_three_crashes_in_five_minutes_until_the_worker_runs_a_minute() -> None:
    async def nothing() -> None:
        return None

    worker = Worker("outbox", nothing, state="running")
    worker.crashed_at.extend([1000.0, 1100.0])
    assert workers_trouble({"outbox": worker}, 1100.0) is None  # two crashes: not yet a loop
    worker.crashed_at.append(1200.0)
    worker.last_error = "ProcessEnded: pid 4242 killed by SIGKILL"
    worker.last_beat = 1200.0 + LOOP_OVER_SECONDS - 1
    said = workers_trouble({"outbox": worker}, 1200.0 + LOOP_OVER_SECONDS - 1)
    assert said == (
        "worker outbox crash-looping: 3 crashes in the last 5 min, the last 59 s ago (ProcessEnded),"
        " running again; smsgw status and the log say why"
    )
    worker.last_beat = 1200.0 + LOOP_OVER_SECONDS
    assert workers_trouble({"outbox": worker}, 1200.0 + LOOP_OVER_SECONDS) is None  # ran a minute: over
    worker.crashed_at.append(1290.0)  # a fourth, but the first is out of the window by then
    worker.last_beat = 1000.0 + LOOP_WINDOW_SECONDS + 1
    assert "3 crashes" in (workers_trouble({"outbox": worker}, 1000.0 + LOOP_WINDOW_SECONDS + 1) or "")
