"""Billing and the retention purge, over a real store with an injected clock: purged detail is said, not
hidden; the purge keeps a month until it is billed, and a month whose billing keeps failing is not
purged. Split from test_billing.py by subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from billing_reports import job
from billing_reports.monthly import Month
from billing_reports.repo import LAST_BILLED, BillingRepo
from billing_reports.writer import ArchiveKept, write_month
from gateway.scheduler import purge
from tests.billing_reader import read
from tests.test_billing import TZ, add_account, at, mt, setup, times


async def test_purged_detail_is_said_not_hidden(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 5))
    acme = add_account(store)
    mt(store, acme, at(2026, 1, 10), parts=3)
    store.accounts.add_usage([f"account:{acme}"], ["2026-01"], 3)
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    kept = read((cfg.state_dir / "billing" / "2026-01" / "acme.txt").read_bytes())
    assert kept.notes == [] and len(kept.sms) == 1
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-05")  # billed: the purge may take it
    clock.now = at(2026, 6, 1)  # 90 days of retention later
    await purge(store, cfg)
    path = cfg.state_dir / "billing" / "2026-01" / "acme.txt"
    # the file written while the rows existed is the record: a re-run does not shorten it.
    with pytest.raises(ArchiveKept, match="retention purge"):
        write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    assert len(read(path.read_bytes()).sms) == 1
    path.rename(tmp_path / "archived-acme.txt")  # moved away by the admin: the shorter one is written
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    purged = read(path.read_bytes())
    assert purged.sms == [] and "deleted by the retention purge" in purged.notes[0]
    assert purged.header["accepted parts (usage counter)"] == ["3"]
    # A run of the month after the purge stopped partway (Ctrl-C): its files were taken for archives
    # and the month, marked incomplete, could never be written whole ("kept as they are").
    from billing_reports.files import is_incomplete, mark_incomplete

    mark_incomplete(path.parent, "2026-01")
    (path.parent / "_summary.txt").unlink()
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    assert not is_incomplete(path.parent) and (path.parent / "_summary.txt").exists()
    assert read(path.read_bytes()) == purged


async def test_the_purge_keeps_a_month_until_it_is_billed(tmp_path: Path) -> None:
    # Defect: the purge deleted detail rows of a month not billed yet (a retention of 20 days did so
    # every month), so that month's billing file could never list every SMS. Here: 40 days,
    # and the daemon was down over the month end; at its start the purge must not outrun the billing.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 2, 20), retention_days=40)
    acme = add_account(store)
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-02")
    for day in (2, 10, 20):
        mt(store, acme, at(2026, 3, day, 12))
    detail = lambda: store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]  # noqa: E731
    clock.now = at(2026, 4, 12, 3, 30)  # the 2nd of March is past the retention, March is unbilled
    with capture_logs() as logs:
        await purge(store, cfg)
    assert detail() == 3
    held = [e for e in logs if e["event"] == "retention.held_for_billing"]
    assert [(e["month"], e["kept_from"]) for e in held] == [("2026-03", "2026-03-01T00:00:00+01:00")]
    assert await job.run_due(store, cfg) == [Month(2026, 3)]
    march = read((cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes())
    assert march.notes == [] and times(cfg, "2026-03") == [
        "2026-03-02 12:00:00",
        "2026-03-10 12:00:00",
        "2026-03-20 12:00:00",
    ]
    await purge(store, cfg)  # billed: the retention alone decides again
    assert detail() == 2


async def test_a_month_whose_billing_keeps_failing_is_not_purged(tmp_path: Path) -> None:
    # The same hold with the default retention: billing stopped after January (a full disk, say),
    # and 90 days later the purge would reach February; it waits for February to be billed.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 31))
    acme = add_account(store)
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-01")
    mt(store, acme, at(2026, 1, 20))
    mt(store, acme, at(2026, 2, 3))
    clock.now = at(2026, 5, 20)
    await purge(store, cfg)
    dates = [r[0] for r in store.db.conn.execute("SELECT created_at FROM messages")]
    assert dates == [at(2026, 2, 3)]  # January was billed and goes; February waits
    assert float(BillingRepo(store.db, store.clock).get("purged_before") or 0) == at(2026, 2, 1)
