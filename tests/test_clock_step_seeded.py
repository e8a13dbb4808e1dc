"""The first look of a start, seeded from the kept reading (`gateway.clocksteps.KeptReading`), when the
wall clock stepped while the daemon was stopped for longer than the step.

The first look placed the rows written between the kept reading and itself by the middle of the two
readings (`first_after`), which holds only while the step is longer than the time between the looks:
across a downtime it is not. Stopped 2 hours and stepped back 1 hour, an SMS accepted after the start
(before the first look) had its validity cut by the hour and expired at once, and a retry written in
the last seconds before the stop stayed unmoved and waited the step's length. Rows are told by the
ids read at the start instead, and the start takes that look before it opens the listeners. Real
SQLite store; the wall clock and boot time injected.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import daemon as daemon_module
from gateway import housekeeping as housekeeping_module
from gateway.config import Config
from gateway.store.clockstep import Reading, read_marks, save_reading
from gateway.store.commit import StoreBusy
from gateway.store.db import Store
from smsc.outage import boottime
from tests.conftest import Running, mail, running_gateway
from tests.test_clock_step import (
    HOUR,
    Monotonic,
    SteppingClock,
    accepted,
    due_at,
    housekeeping,
    on_a_stepping_clock,
    to,
)
from tests.test_store import Clock


def kept_boot(monkeypatch: pytest.MonkeyPatch, elapsed: Any) -> None:
    """`elapsed` taken for boot time, in one boot: the housekeeping keeps and loads its reading."""
    monkeypatch.setattr(housekeeping_module, "boottime", elapsed)
    monkeypatch.setattr(housekeeping_module, "boot_id", lambda: "boot-a")


def one_boot_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, Monotonic, Store]:
    """A real SQLite store, serving, on an injected wall clock and boot time (`kept_boot`)."""
    clock, mono = Clock(), Monotonic()
    kept_boot(monkeypatch, mono)
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.db.serve()
    return clock, mono, store


def keep_reading(store: Store, clock: Clock, mono: Monotonic) -> None:
    """The reading a look keeps for the next start, taken now."""
    with store.db.conn:
        save_reading(store.db.conn, "boot-a", Reading(clock.t, mono.t, read_marks(store.db.conn)))


async def test_an_sms_accepted_after_the_start_keeps_its_validity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, mono, store = one_boot_store(tmp_path, monkeypatch)
    before_stop = await accepted(store)
    keep_reading(store, clock, mono)
    was_before = due_at(store, before_stop)
    mono.t += 2 * HOUR  # stopped 2 hours; meanwhile the clock is stepped back 1 hour
    clock.t += 2 * HOUR - HOUR
    hk = housekeeping(store, mono)  # the start
    after_start = await accepted(store)  # before the first look (one that failed: the store locked)
    was_after = due_at(store, after_start)
    assert await hk.check_clock() == pytest.approx(HOUR)
    assert due_at(store, after_start) == pytest.approx(was_after, abs=0.01)  # on the stepped clock
    assert due_at(store, before_stop) == pytest.approx((was_before[0] - HOUR, was_before[1] - HOUR), abs=0.01)
    # The SMS accepted before the stop had its hour (2 passed); the one accepted after the start has it still.
    assert [f.message_id for f in await store.write(store.queue.expire_due)] == [1]
    store.close()


async def retried(store: Store, at: float) -> int:
    """An SMS accepted now, tried, to be retried 15 min after `at`: its part's id."""
    part = await accepted(store)
    with store.db.conn:
        store.db.conn.execute(
            "UPDATE parts SET state = 'deferred', attempts = 1, next_attempt_at = ? WHERE id = ?",
            (at + 900, part),
        )
    return part


async def test_rows_written_after_the_kept_reading_are_placed_by_a_step_back_in_the_seconds_before_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last look kept its reading; a retry is written 0.3 s later; NTP steps the clock back 600 s
    # 0.2 s after that, an SMS is accepted on the stepped clock, and the daemon crashes before its next
    # look. Taken for one written after the step, the retry stayed unmoved and waited the step's length;
    # taken for one written before it, the SMS had its validity cut by 600 s.
    clock, mono, store = one_boot_store(tmp_path, monkeypatch)
    before_step = await accepted(store)
    keep_reading(store, clock, mono)
    clock.t += 0.3
    mono.t += 0.3
    retry = await retried(store, clock.t)
    clock.t += 0.2 - 600.0
    mono.t += 0.2
    after_step = await accepted(store)
    was = {part: due_at(store, part) for part in (before_step, retry, after_step)}
    mono.t += 999.0  # stopped ~1000 s
    clock.t += 999.0
    hk = housekeeping(store, mono)
    assert await hk.check_clock() == pytest.approx(600.0)
    assert due_at(store, after_step) == pytest.approx(was[after_step], abs=0.01)
    for moved in (before_step, retry):
        assert due_at(store, moved) == pytest.approx(tuple(t - 600.0 for t in was[moved]), abs=0.01)
    store.close()


class BootClock:
    """Boot time with the downtime a test adds to it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return boottime() + self.offset


def one_boot_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SteppingClock, Config, BootClock]:
    """A daemon's config on a wall clock a test steps, in one boot (`kept_boot`) whose time a test
    adds downtime to: the clock, config and boot time to run it on."""
    clock, _, cfg = on_a_stepping_clock(tmp_path)
    boot = BootClock()
    kept_boot(monkeypatch, boot)
    return clock, cfg, boot


async def reading_kept(gw: Running) -> None:
    """Back once the running daemon's clock check has kept its reading in the store."""
    while gw.daemon.housekeeping is None or gw.daemon.housekeeping.kept.saved is None:
        await asyncio.sleep(0.1)


async def stepped_back_while_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SteppingClock, Config, BootClock]:
    """A daemon run with two SMS queued (no link up: they wait) stopped 2 hours, the clock stepped
    back 1 hour meanwhile: the clock, config and boot time to start it again on."""
    clock, cfg, boot = one_boot_daemon(tmp_path, monkeypatch)
    numbers = [to(f"60114200{i}") for i in range(1, 3)]
    async with running_gateway(cfg, clock, boot) as gw:
        assert (await gw.send(mail(numbers, "Queued before the stop"), numbers)).error is None
    boot.offset += 2 * HOUR
    clock.offset += HOUR
    return clock, cfg, boot


async def test_the_start_looks_at_the_clock_before_it_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, cfg, boot = await stepped_back_while_stopped(tmp_path, monkeypatch)
    said_before_listening: list[str] = []
    listen = daemon_module.open_listeners

    async def spied(*args: Any) -> None:
        said_before_listening.extend(e["event"] for e in logs)
        await listen(*args)

    monkeypatch.setattr(daemon_module, "open_listeners", spied)
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boot):
            await asyncio.sleep(0)
    assert "clock.stepped_back" in said_before_listening, said_before_listening
    steps = [e for e in logs if e["event"] == "clock.stepped_back"]
    assert len(steps) == 1 and steps[0]["parts"] == 2, steps  # accepted after the kept reading or not


async def test_a_start_with_no_step_opens_its_listeners_while_another_process_holds_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start's look kept its reading in a write that waits for the lock: another process's write
    # held the listeners (and READY) for that wait, 30 s, and the reading was not kept anyway.
    clock, cfg, boot = one_boot_daemon(tmp_path, monkeypatch)
    async with running_gateway(cfg, clock, boot) as gw:
        await reading_kept(gw)  # the worker's look keeps a reading: the next start is seeded
    other = sqlite3.connect(cfg.db_path, isolation_level=None)
    built = housekeeping_module.Housekeeping.__init__

    def then_locked(self: Any, *args: Any, **kwargs: Any) -> None:
        built(self, *args, **kwargs)
        other.execute("BEGIN IMMEDIATE")  # another process writes (sqlite3, a backup) from here

    listen = daemon_module.open_listeners

    async def released(*args: Any) -> None:
        said_before_listening.extend(e["event"] for e in logs)
        other.execute("ROLLBACK")
        await listen(*args)

    said_before_listening: list[str] = []
    monkeypatch.setattr(housekeeping_module.Housekeeping, "__init__", then_locked)
    monkeypatch.setattr(daemon_module, "open_listeners", released)
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boot) as gw:
            await reading_kept(gw)  # by the worker's look once the lock is gone
    other.close()
    assert "clock.reading_not_kept" not in said_before_listening, said_before_listening
    assert not [e for e in logs if e["event"].startswith("clock.")], logs


async def test_a_first_look_that_failed_leaves_the_step_to_the_workers_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start's look failed (the store locked by another process): the listeners open all the same,
    # and the worker's look applies the step once, still telling the rows by the ids read at the start.
    clock, cfg, boot = await stepped_back_while_stopped(tmp_path, monkeypatch)
    look = housekeeping_module.Housekeeping.check_clock
    looks: list[int] = []

    async def first_one_locked(self: housekeeping_module.Housekeeping, keep: bool = False) -> float:
        looks.append(1)
        if len(looks) == 1:
            raise StoreBusy("database is locked by another process")
        return await look(self, keep)

    monkeypatch.setattr(housekeeping_module.Housekeeping, "check_clock", first_one_locked)
    later = [to("601142009")]
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boot) as gw:
            assert (await gw.send(mail(later, "Accepted after the start"), later)).error is None
            newest = "SELECT expires_at FROM parts ORDER BY id DESC LIMIT 1"
            was = gw.daemon.store.db.conn.execute(newest).fetchone()
            while not any(e["event"] == "clock.stepped_back" for e in logs):
                await asyncio.sleep(0.1)
            assert gw.daemon.store.db.conn.execute(newest).fetchone() == was  # on the stepped clock
    assert [e["event"] for e in logs if e["event"].startswith("clock.")] == [
        "clock.first_look_failed",
        "clock.stepped_back",
    ]
    steps = [e for e in logs if e["event"] == "clock.stepped_back"]
    assert steps[0]["parts"] == 2, steps  # the two queued before the stop, not the one after the start
