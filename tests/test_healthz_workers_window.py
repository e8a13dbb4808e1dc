"""When a worker's crashes make a loop (`gateway.crashloop`), and which loops /healthz answers 503
for (`gateway.web.healthworkers`): three within 5 minutes, until the worker has run a minute since
its restart; 503 only for the dispatcher or every intake process. The schedules are the real
supervisor's (`Supervisor._supervise`, its back-off included) on a virtual clock, the worker judged
at every second of it; the rest on a record of crashes at given times. tests/test_healthz_workers.py
has the real daemon.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway import supervisor
from gateway.crashloop import LOOP_OVER_SECONDS
from gateway.supervisor import Supervisor, Worker
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


class Schedule:
    """The supervisor's clock, moved second by second by its back-off and by the worker's runs (each
    `runs` long, then a crash; running for good after the last), the dispatcher judged at each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *runs: float) -> None:
        self.now = 1000.0
        self.runs = list(runs)
        self.pauses: list[float] = []
        self.seen: list[tuple[float, str | None, str]] = []  # (when, /healthz's 503, status's state)
        self.settled = asyncio.Event()  # the last run goes on for good
        self.ended = asyncio.Event()  # ... until this, at the daemon's stop
        self.supervisor = Supervisor()
        self.worker = self.supervisor.add("dispatcher", self.dispatcher)
        clock = type("Clock", (), {"monotonic": lambda _: self.now, "time": lambda _: self.now})()
        loop = type("Loop", (), {"sleep": self.pause, "__getattr__": lambda _, name: getattr(asyncio, name)})
        monkeypatch.setattr(supervisor, "time", clock)
        monkeypatch.setattr(supervisor, "asyncio", loop())

    def tick(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            self.now += 1
            self.worker.last_beat = self.now  # beating all along: a loop, never a stall
            said = workers_health({"dispatcher": self.worker}, self.now).trouble
            self.seen.append((self.now, said, self.worker.snapshot(self.now)["state"]))

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.tick(seconds)
        await asyncio.sleep(0)

    async def dispatcher(self) -> None:
        if not self.runs:
            self.settled.set()
            await self.ended.wait()
            return
        self.tick(self.runs.pop(0))
        raise RuntimeError("claim failed")

    async def __aenter__(self) -> Schedule:
        self.task = asyncio.ensure_future(self.supervisor._supervise(self.worker))
        await asyncio.wait_for(self.settled.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.supervisor.stopping = True
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def at(self, when: float) -> tuple[str | None, str]:
        return next((said, state) for now, said, state in self.seen if now == when)


async def test_a_worker_crashing_35_s_after_each_start_is_a_loop_at_every_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 35 s of work, a crash, the supervisor's pause (30 s at most): crashes 65 s apart, down nearly
    # half the time, its back-off never reset. Counted crash to crash, each gap ended the loop.
    async with Schedule(monkeypatch, *[35.0] * 12) as schedule:
        pass
    crashes = list(schedule.worker.crashed_at)
    assert len(crashes) == 12 and crashes[-1] - crashes[-2] == 65.0 and schedule.pauses[-1] == 30.0
    looping = [(now, said, state) for now, said, state in schedule.seen if crashes[2] < now < crashes[-1]]
    assert looping and all(
        (said or "").startswith("worker dispatcher crash-looping: ") and state == "crash-looping"
        for now, said, state in looping
    ), [(now, said, state) for now, said, state in looping if state != "crash-looping"][:3]
    assert schedule.at(crashes[-1] - 1)[0] == (
        "worker dispatcher crash-looping: 4 crashes in the last 5 min, the last 64 s ago (RuntimeError),"
        " running again; smsgw status and the log say why"
    )


async def test_the_loop_is_three_crashes_until_the_worker_runs_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Schedule(monkeypatch, 1.0, 1.0, 1.0) as schedule:
        # crashes at 1001, 1003 and 1006 (paused 1 s, 2 s, 4 s); running again since 1010
        assert list(schedule.worker.crashed_at) == [1001.0, 1003.0, 1006.0]
        assert schedule.at(1004.0) == (None, "restarting")  # two crashes: not yet a loop
        assert schedule.at(1007.0)[1] == "crash-looping"
        schedule.tick(LOOP_OVER_SECONDS)
    assert schedule.at(1010.0 + LOOP_OVER_SECONDS - 1) == (
        "worker dispatcher crash-looping: 3 crashes in the last 5 min, the last 63 s ago (RuntimeError),"
        " running again; smsgw status and the log say why",
        "crash-looping",
    )  # 60 s after the last crash, but the pause before the restart was no run
    assert schedule.at(1010.0 + LOOP_OVER_SECONDS) == (None, "running")  # it ran a minute: over
    assert LOOP_OVER_SECONDS == 2 * supervisor.BACKOFF_MAX_SECONDS  # the supervisor's back-off reset


async def test_one_crash_after_a_loop_ended_is_no_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three crashes at the start, a run of 100 s, then one fresh crash: still within the 5 minutes of
    # the first three, it was "4 crashes" and 503 at once. Two more at once: a loop again, of three.
    async with Schedule(monkeypatch, 1.0, 1.0, 1.0, 100.0, 1.0, 1.0) as schedule:
        pass
    crashes = list(schedule.worker.crashed_at)
    assert crashes == [1110.0, 1112.0, 1115.0]  # the supervisor forgot those before the long run
    assert schedule.pauses[3:] == [1.0, 2.0, 4.0]  # and its back-off started again
    assert schedule.at(1111.0) == (None, "restarting")
    assert schedule.at(1112.0) == (None, "running")
    assert schedule.at(1114.0) == (None, "restarting")
    said, state = schedule.at(1116.0)
    assert said and said.startswith("worker dispatcher crash-looping: 3 crashes") and state == "crash-looping"


async def test_a_worker_stopped_after_a_loop_is_stopped_not_crash_looping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stopped by the daemon's stop within a minute of its last restart, the worker read "crash-looping
    # ... running again" in the snapshot and /healthz: its last start was left as a run going on.
    async with Schedule(monkeypatch, 1.0, 1.0, 1.0) as schedule:
        assert schedule.worker.snapshot(schedule.now)["state"] == "crash-looping"
        schedule.supervisor.stopping = True
        schedule.ended.set()
        await asyncio.wait_for(schedule.task, 10)
        health = workers_health({"housekeeping": schedule.worker}, schedule.now)
        assert schedule.worker.snapshot(schedule.now)["state"] == "stopped"
        assert (health.trouble, health.warnings) == (None, [])


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
