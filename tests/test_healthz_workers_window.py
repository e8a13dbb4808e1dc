"""When a worker's crashes make a loop (`gateway.crashloop`), and which loops /healthz answers 503
for (`gateway.web.healthworkers`): three within 5 minutes, until the worker has gone a minute
without one; 503 only for the dispatcher or every intake process. Judged at given times (the
supervisor's monotonic clock) on the record the supervisor keeps of each crash;
tests/test_healthz_workers.py has the real daemon.
"""

from __future__ import annotations

from gateway import supervisor
from gateway.crashloop import LOOP_OVER_SECONDS
from gateway.supervisor import Worker
from gateway.web.healthworkers import workers_health


async def nothing() -> None:
    return None


def looping(
    name: str, *crashes: float, error: str = "OperationalError: disk I/O error", beat: float = 104.0
) -> Worker:
    """A worker with those crashes, its last sign of life at `beat`."""
    worker = Worker(name, nothing, state="running", last_error=error)
    worker.crashed_at.extend(crashes)
    worker.last_beat = beat
    return worker


def test_the_loop_is_three_crashes_until_the_worker_runs_a_minute() -> None:
    worker = looping("dispatcher", 1000.0, 1001.0, beat=1002.0)  # restarted after 1 s, then 2 s: the back-off
    assert workers_health({"dispatcher": worker}, 1002.0).trouble is None  # two crashes: not yet a loop
    worker.crashed_at.append(1003.0)
    worker.last_error = "ProcessEnded: pid 4242 killed by SIGKILL"
    worker.last_beat = 1003.0 + LOOP_OVER_SECONDS - 1
    assert workers_health({"dispatcher": worker}, 1003.0 + LOOP_OVER_SECONDS - 1).trouble == (
        "worker dispatcher crash-looping: 3 crashes in the last 5 min, the last 59 s ago (ProcessEnded),"
        " running again; smsgw status and the log say why"
    )
    worker.last_beat = 1003.0 + LOOP_OVER_SECONDS
    assert workers_health({"dispatcher": worker}, 1003.0 + LOOP_OVER_SECONDS).trouble is None  # over
    assert LOOP_OVER_SECONDS == 2 * supervisor.BACKOFF_MAX_SECONDS  # the supervisor's back-off reset


def test_one_crash_after_a_loop_ended_is_no_loop() -> None:
    # Three crashes at the start, a quiet minute, then one fresh crash two minutes on: still within
    # the 5 minutes of the first three, it was "4 crashes" and 503 at once.
    worker = looping("dispatcher", 0.0, 2.0, 6.0, 186.0, beat=187.0)
    assert workers_health({"dispatcher": worker}, 187.0).trouble is None
    assert supervisor.Worker.snapshot(worker, 187.0)["state"] == "running"
    worker.crashed_at.extend([187.0, 189.0])  # and two more at once: a loop again, of these three
    worker.last_beat = 190.0
    said = workers_health({"dispatcher": worker}, 190.0).trouble or ""
    assert said.startswith("worker dispatcher crash-looping: 3 crashes"), said


def test_a_loop_at_the_longest_back_off_stays_a_loop() -> None:
    # 30 s pauses and a few seconds of running between crashes: under a minute apart, each counted.
    worker = looping("dispatcher", *[float(at) for at in range(0, 300, 35)], beat=281.0)
    said = workers_health({"dispatcher": worker}, 281.0).trouble or ""
    assert said.startswith("worker dispatcher crash-looping: 9 crashes"), said


def test_only_a_loop_that_stops_the_node_is_503_the_others_are_warnings() -> None:
    housekeeping = looping("housekeeping", 100.0, 101.0, 103.0)
    outbox = looping("outbox", 100.0, 101.0, 103.0, error="RuntimeError: boom")
    intake_1 = looping("intake-1", 100.0, 101.0, 103.0, error="ProcessEnded: pid 7 killed by SIGKILL")
    intake_2 = looping("intake-2")
    workers = {
        "dispatcher": looping("dispatcher"),
        "outbox": outbox,
        "housekeeping": housekeeping,
        "intake-1": intake_1,
        "intake-2": intake_2,
    }
    health = workers_health(workers, 104.0)
    assert health.trouble is None  # SMS leave, intake-2 takes the relay port's mail
    assert [line.split(":")[0] for line in health.body().splitlines()] == [
        "warning",
        "warning",
        "warning",
    ]
    assert [said.split(" crash-looping")[0] for said in health.warnings] == [
        "worker housekeeping",
        "worker intake-1",
        "worker outbox",
    ]
    assert Worker.snapshot(housekeeping, 104.0)["state"] == "crash-looping"  # `smsgw status` says it
    intake_2.last_beat = 0.0  # silent since: stalled (its relay port's share taken by no one)
    health = workers_health(workers, 104.0)
    assert (health.trouble or "").startswith(
        "no intake process takes mail: worker intake-1 crash-looping: 3 crashes"
    ), health.trouble
    assert "; worker intake-2 stalled: no sign of life for 104 s" in (health.trouble or "")
    assert len(health.warnings) == 2
