"""`smsgw restore` and the billing done after the backup was taken.

The billing files lie on disk, outside the database, and their mails went: restored as the backup had
it, the billing state said the month was never billed, and the daemon's start billed it again and
mailed every account and the operator a second time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from billing_reports import failedjobs
from gateway import scheduler
from gateway.store.db import Store
from tests.billing_world import at, billing_mails, cli, fill, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_after_backup import acme_cli
from tests.test_restore_carry import rows


async def test_a_month_billed_after_the_backup_is_not_billed_again_and_the_next_is_billed_once(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    store = Store.open(cfg.db_path)
    try:  # an SMS accepted after the backup, in April: a month not billed yet
        fill(store, store.accounts.get_account("acme").id, [at(2026, 4, 1, 12)])
    finally:
        store.close()
    now = [at(2026, 4, 2, 9)]
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: now[0]) as gw:  # bills March at its start
            await gw.until(lambda: len(billing_mails(sink)) == 3 and last_billed(gw.store) == "2026-03")
            sent = "SELECT COUNT(*) FROM outbox WHERE state = 'sent'"
            await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == 3, timeout=60)
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the billing of 2026-03 done since (not billed again), 3 billing mails" in res.stdout, res.stdout
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: now[0]) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
                now[0] = at(2026, 5, 2, 9)  # April ends: billed once, with the SMS carried since the backup
                await scheduler.bill(gw.store, cfg)
                await gw.until(lambda: len(billing_mails(sink)) == 3, timeout=60)
    got = billing_mails(sink)
    # March's three went before the restore, and not again: the three are April's.
    assert sorted(m.filename for m in got) == ["2026-04-acme.txt", "2026-04-acme.txt", "2026-04-summary.txt"]
    april = next(m.attachment for m in got if m.filename == "2026-04-acme.txt").decode()
    assert "\nend\t1\tsha256:" in april, april


async def up_to_date(logs: list[dict[str, Any]], gw: Any) -> None:
    """The start's billing run found nothing due."""
    await gw.until(lambda: any(e["event"] == "billing.up_to_date" for e in logs))


def test_the_billing_marks_and_the_billing_mails_queued_since_the_backup_are_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('last_billed', '2026-01')")
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('rebill/2026-01', '5 3600')")
    backup = tmp_path / "backup.db"
    cli_.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # February billed since, its mail not sent yet
        conn.execute("UPDATE billing_state SET value = '2026-02' WHERE key = 'last_billed'")
        conn.execute("DELETE FROM billing_state WHERE key = 'rebill/2026-01'")  # billed again meanwhile
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('mailed/2026-02/1', 'abc 7')")
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('mt_as_of/2026-02', '7 1 2')")
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, created_at)"
            " VALUES ('billing', '', 'billing@acme.example', x'00', 7, 7)"
        )
    out = cli_.ok("restore", str(backup))
    assert any(
        "the billing of 2026-02 done since (not billed again), 1 billing mails" in line for line in out
    )
    # The billing mail holds its id: no mark to keep new outbox ids past it.
    assert not any("outbox mail ids after" in line for line in out), out
    assert rows(db, "SELECT key, value FROM billing_state ORDER BY key") == [
        ("last_billed", "2026-02"),
        ("mailed/2026-02/1", "abc 7"),
        ("mt_as_of/2026-02", "7 1 2"),
    ]
    assert rows(db, "SELECT kind, rcpt, state FROM outbox") == [("billing", "billing@acme.example", "queued")]
    cli_.ok("restore", str(backup))  # restored again over the restored: nothing twice
    assert rows(db, "SELECT COUNT(*) FROM outbox") == [(1,)]


async def test_a_billing_run_failed_since_the_backup_is_still_said_after_the_restore(tmp_path: Path) -> None:
    # The failure kept since the backup was dropped with the backup's billing state: status said all
    # was well until the next hourly run failed again. (Within the retention of the backup's newest
    # mail: the restore carries from the same database grown on.)
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 10, 12)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    cfg.billing_dir.mkdir(parents=True, exist_ok=True)
    (cfg.billing_dir / "2026-02").write_text("not a directory\n")
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 2, 9)) as gw:
        await gw.until(lambda: "billing" in failedjobs.failures(gw.store.db.conn))
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "billing run of 2026-02 has failed (still said until a run succeeds)" in res.stdout, res.stdout
    shown = await asyncio.to_thread(cli, path, "status")
    assert "billing run of 2026-02 has failed since 2026-04-02 09:00: NotADirectoryError" in shown.stdout


def test_a_failure_over_since_the_backup_is_not_said_after_the_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_, db = acme_cli(tmp_path, capsys)
    failed = '{"month": "2026-01", "error": "OSError: x", "since": 7}'
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('last_billed', '2025-12')")
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('failed/billing', ?)", (failed,))
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('failed/purge', '{\"since\": 7}')")
    backup = tmp_path / "backup.db"
    cli_.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # both succeeded since; January billed by hand
        conn.execute("UPDATE billing_state SET value = '2026-01' WHERE key = 'last_billed'")
        conn.execute("DELETE FROM billing_state WHERE key = 'failed/purge'")
    cli_.ok("restore", str(backup))
    assert rows(db, "SELECT key, value FROM billing_state ORDER BY key") == [("last_billed", "2026-01")]
