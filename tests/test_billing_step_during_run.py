"""A clock step back while the scheduled run bills a month (its files written in a worker thread).

The run of October starts at the clock's reading of 00:05 on November 1st, an hour ahead; NTP steps
it back to 23:05 on October 31st while the run writes the files. The SMS of the rest of October are
in no file unless October is billed again once the clock passes its end again (R-5.2): the step must
record it so, and the run must not then record October billed over it. The same holds for a run
that bills October again after an earlier step: a second step during it keeps October waiting.
A real SQLite store, the housekeeping's clock check and the billing run as the daemon calls them;
the only stand-in is the pause inside the worker thread, where the step falls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from billing_reports import job, rebill
from billing_reports.monthly import Month
from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway.config import Config
from gateway.store.db import Store
from tests.billing_world import at, last_billed
from tests.test_billing_clock_step_back import look, served
from tests.test_clock_step import HOUR, received

OCTOBER = Month.parse("2027-10")


@asynccontextmanager
async def billing_paused(
    store: Store, cfg: Config, monkeypatch: pytest.MonkeyPatch, month: Month
) -> AsyncIterator[asyncio.Task[Any]]:
    """The run of `month` as `run_due` calls it, held inside its worker thread's `write_month`
    until the block ends; the run is awaited after it."""
    gate, entered = threading.Event(), threading.Event()
    real = job.write_month

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        gate.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "write_month", held)
    run = asyncio.create_task(job.bill_month(store, cfg, month))
    while not entered.is_set():
        await asyncio.sleep(0.01)
    try:
        yield run
    finally:
        gate.set()
        await run
        monkeypatch.setattr(job, "write_month", real)


async def test_a_step_back_during_the_run_leaves_the_month_to_bill_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, clock, mono, hk = served(tmp_path)
    cfg = hk.notifier.config
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-09"))
    clock.t = at(2027, 11, 1, 0, 5)  # an hour ahead: really 23:05 on October 31st
    await hk.check_clock()
    async with billing_paused(store, cfg, monkeypatch, OCTOBER):
        assert await look(hk, clock, mono, 10.0, -HOUR) == pytest.approx(HOUR)  # NTP: 23:05 Oct 31
    assert rebill.again(store.db.conn, OCTOBER), (
        "October, which the clock reads again, is not to be billed again"
    )
    assert last_billed(store) == "2027-09", "the run recorded October billed over the step back into it"
    assert "2027-10" in rebill.waiting(store.db.conn, job.ZoneInfo(cfg.gateway.timezone))

    clock.t = at(2027, 10, 31, 23, 30)  # still October: nothing due
    assert await job.run_due(store, cfg) == []
    clock.t = at(2027, 11, 1, 0, 10)  # past October's end again: billed again, and done with
    assert await job.run_due(store, cfg) == [OCTOBER]
    assert last_billed(store) == "2027-10" and not rebill.again(store.db.conn, OCTOBER)
    store.close()


async def test_a_step_back_during_a_run_billing_again_is_not_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, clock, mono, hk = served(tmp_path)
    cfg = hk.notifier.config
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-10"))
    clock.t = at(2027, 11, 1, 0, 5)
    await hk.check_clock()
    await look(hk, clock, mono, 10.0, -HOUR)  # into October, billed: to be billed again
    assert rebill.again(store.db.conn, OCTOBER) and last_billed(store) == "2027-09"
    await look(hk, clock, mono, at(2027, 11, 1, 0, 5) - clock.t)  # past its end again: billed again
    async with billing_paused(store, cfg, monkeypatch, OCTOBER):  # the run billing October again
        assert await look(hk, clock, mono, 10.0, -HOUR) == pytest.approx(HOUR)  # back into October
    assert clock.t < OCTOBER.bounds(job.ZoneInfo(cfg.gateway.timezone))[1]
    assert rebill.again(store.db.conn, OCTOBER), "the run billing October again erased a new step into it"
    assert last_billed(store) == "2027-09"
    store.close()


@pytest.mark.parametrize(("received_at", "crosses"), [((0, 20), True), ((1, 5), False)])
async def test_an_answer_moved_back_over_the_end_of_the_month_being_billed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, received_at: tuple[int, int], crosses: bool
) -> None:
    # The run of October at 01:10 on November 1st, the clock right; during it the clock steps back
    # an hour, to 00:10, still November. An answer received at 00:20 moves to 23:20 on October 31st,
    # into the month being billed, perhaps after the run read its rows: October is billed again.
    # One received at 01:05 moves to 00:05 and stays in November: October is billed as it is.
    store, clock, mono, hk = served(tmp_path)
    cfg = hk.notifier.config
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-09"))
    clock.t = at(2027, 11, 1, 0, 0)
    await hk.check_clock()
    await look(hk, clock, mono, at(2027, 11, 1, *received_at) - clock.t)
    await received(store, "Tak")
    await look(hk, clock, mono, at(2027, 11, 1, 1, 10) - clock.t)
    async with billing_paused(store, cfg, monkeypatch, OCTOBER):
        assert await look(hk, clock, mono, 10.0, -HOUR) == pytest.approx(HOUR)
    assert rebill.again(store.db.conn, OCTOBER) == crosses
    assert last_billed(store) == ("2027-09" if crosses else "2027-10")
    store.close()


async def test_a_run_with_no_step_records_the_month_billed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, clock, mono, hk = served(tmp_path)
    cfg = hk.notifier.config
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-09"))
    clock.t = at(2027, 11, 1, 1, 0)
    await hk.check_clock()
    async with billing_paused(store, cfg, monkeypatch, OCTOBER):
        assert await look(hk, clock, mono, 10.0) == 0.0
    assert last_billed(store) == "2027-10" and not rebill.again(store.db.conn, OCTOBER)
    store.close()


SEPTEMBER = Month.parse("2027-09")


@asynccontextmanager
async def catch_up_paused(
    store: Store, cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[asyncio.Task[list[Month]]]:
    """`run_due` catching up September and October, held inside September's `write_month`."""
    gate, entered = threading.Event(), threading.Event()
    real = job.write_month

    def held(*args: Any, **kwargs: Any) -> Any:
        if not entered.is_set():
            entered.set()
            gate.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "write_month", held)
    run = asyncio.create_task(job.run_due(store, cfg))
    while not entered.is_set():
        await asyncio.sleep(0.01)
    try:
        yield run
    finally:
        gate.set()
        await run


@pytest.mark.parametrize(
    "back_to", [(2027, 10, 31, 23, 5), (2027, 9, 30, 23, 5)], ids=["october", "september"]
)
async def test_a_step_back_during_a_catch_up_stops_it_before_a_month_not_ended_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, back_to: tuple[int, int, int, int, int]
) -> None:
    # The months due were listed before the step: October, which the clock reads again after a step
    # back during September's run, was billed by the same catch-up (its last hour in no file), and a
    # step back into September itself left September waiting for ever under October's record.
    store, clock, mono, hk = served(tmp_path)
    cfg = hk.notifier.config
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-08"))
    clock.t = at(2027, 11, 1, 0, 5)  # an hour ahead at least
    await hk.check_clock()
    async with catch_up_paused(store, cfg, monkeypatch) as run:
        await look(hk, clock, mono, 10.0, at(*back_to) - clock.t - 10.0)
    billed = run.result()
    assert OCTOBER not in billed and last_billed(store) < "2027-10", (billed, last_billed(store))
    if back_to[1] == 9:
        assert billed == [] and rebill.again(store.db.conn, SEPTEMBER) and last_billed(store) == "2027-08"
    else:
        assert billed == [SEPTEMBER] and last_billed(store) == "2027-09"
    clock.t = at(2027, 11, 1, 0, 10)  # both ended again: the next run bills what is left
    assert OCTOBER in await job.run_due(store, cfg)
    assert last_billed(store) == "2027-10" and not rebill.waiting(
        store.db.conn, job.ZoneInfo(cfg.gateway.timezone)
    )
    store.close()
