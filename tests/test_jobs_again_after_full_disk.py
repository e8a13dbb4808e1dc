"""The billing run and the retention purge run again once a full disk has room (`failures_unkept`).

Both failed for want of room, their failures held in memory, and both ran again at the same instant:
the purge first held the month that billing then billed in the same second
(`retention.held_for_billing`), its rows waiting for the next day's purge; and the two "failed ...
tried again every hour" mails were queued at the moment of the run that ended the failures, with no
word after. Now billing runs first and the purge after it, and a failure a run again ends is never
mailed. A real store (the full disk as SQLite sees it: `max_page_count`) and APScheduler on the loop.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from structlog.testing import capture_logs

from billing_reports import failedjobs, failures
from billing_reports.failedjobs import unkept
from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway import scheduler as jobs
from tests.test_billing import add_account, at, mt, setup

NO_LIMIT = 1073741823  # SQLite's default max_page_count
FAR = 86400.0 * 300


def fill(conn: sqlite3.Connection) -> None:
    """No room for a failure's record, as on a full disk: no page may be added (`max_page_count`),
    and the table it goes to is filled up (a small row fitted into its page and went through)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    n = 0
    for size in (2000, 500, 100, 20, 1):
        while True:
            n += 1
            try:
                conn.execute(
                    "INSERT INTO billing_state (key, value) VALUES (?, ?)", (f"~fill{n}", "x" * size)
                )
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc), exc
                break


def room(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA max_page_count = {NO_LIMIT}")


async def until(predicate: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_after_a_full_disk_billing_runs_before_the_purge_and_no_notice_of_a_failure_over(
    tmp_path: Path,
) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 2, 20), retention_days=1)
    acme = add_account(store)
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-02")
    for day in (2, 10, 20):
        mt(store, acme, at(2026, 3, day, 12))
    clock.now = at(2026, 4, 12, 3, 30)  # March unbilled, its rows past the retention
    conn = store.db.conn
    fill(conn)
    full = OSError(errno.ENOSPC, "No space left on device")
    await failures.record(store, cfg, "billing", full, "2026-03")
    await failures.record(store, cfg, "purge", full, None)
    assert set(unkept(store)) == {"billing", "purge"}, "the full store kept them"
    room(conn)

    loop_scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="Europe/Warsaw")
    far = IntervalTrigger(seconds=FAR)  # only run again by `failures_unkept`
    loop_scheduler.add_job(jobs.purge, far, args=(store, cfg), id="retention-purge", max_instances=1)
    loop_scheduler.add_job(jobs.bill, far, args=(store, cfg), id="monthly-billing", max_instances=1)
    loop_scheduler.add_job(
        jobs.failures_unkept,
        IntervalTrigger(seconds=0.1),
        args=(store, cfg, loop_scheduler),
        id="failures-unkept",
        max_instances=1,
    )
    messages = lambda: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]  # noqa: E731
    with capture_logs() as logs:
        loop_scheduler.start()
        try:
            await until(lambda: BillingRepo(store.db, store.clock).get(LAST_BILLED) == "2026-03", "billed")
            await until(lambda: not failedjobs.failures(conn), "both failures ended by their runs again")
        finally:
            loop_scheduler.shutdown(wait=False)
    events = [e["event"] for e in logs]
    held = [e["month"] for e in logs if e["event"] == "retention.held_for_billing"]
    assert held in ([], ["2026-04"]), logs  # the month under way, never the one billed
    assert events.index("billing.month_billed") < events.index("retention.purged"), events
    assert messages() == 0  # March's rows went with the purge after its billing
    mailed = conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (failures.KIND_MAIL,)).fetchone()[0]
    assert mailed == 0  # both failures over before anyone was told
    assert not unkept(store)
    store.close()


@pytest.mark.parametrize("kind", ["billing"])
async def test_a_failure_that_goes_on_after_the_room_came_back_is_mailed(tmp_path: Path, kind: str) -> None:
    cfg, store, _clock, _ = setup(tmp_path, at(2026, 4, 12, 3, 30))
    conn = store.db.conn
    fill(conn)
    await failures.record(store, cfg, kind, OSError(errno.ENOSPC, "No space left on device"), "2026-03")
    assert kind in unkept(store)
    room(conn)
    assert await failures.keep_unkept(store, cfg) == [kind]
    # The run again fails too (a file in the way, say): that failure is mailed.
    await failures.record(store, cfg, kind, NotADirectoryError(20, "Not a directory"), "2026-03")
    mailed = conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (failures.KIND_MAIL,)).fetchone()[0]
    assert mailed == 1
    store.close()
