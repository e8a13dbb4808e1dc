"""`smsgw restore` over a database lost, when an idle account of the backup (added by mistake) was
removed before the month was billed: the month's run wrote no file for it and its summary does not
name it, so the month was "not whole", billed again at the next start and mailed a second time to
every account and the operator, with a bill of the removed account besides. An account removed before
the run (no file, not in the whole summary, no SMS of the month in the backup) is no missing file:
the month is taken as mailed. Real CLI processes, the real daemon, a real SMTP sink, real SQLite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from gateway.store.db import Store
from tests.billing_world import at, billing_mails, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date
from tests.test_restore_billing_later_months import NOW, started
from tests.test_restore_billing_lost import lose


async def test_a_month_billed_after_an_idle_account_was_removed_is_taken_as_mailed_after_a_restore(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 1, 5))
    try:
        store.accounts.add_account("Tmp")  # by mistake: no users, no traffic
    finally:
        store.close()
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    assert (res := await asyncio.to_thread(cli, path, "account", "remove", "Tmp")).returncode == 0, res.stderr
    last, first = await started(cfg, relay, "2026-03")
    assert last == "2026-03" and len(first) == 3, first
    march = cfg.billing_dir / "2026-03"
    assert not (march / "Tmp.txt").exists()
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the billing of 2026-03 taken as done from the files in billing_dir" in res.stdout, res.stdout
    assert "billed again" not in res.stdout, res.stdout
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
                queued = "SELECT COUNT(*) FROM outbox WHERE kind = 'billing'"
                assert gw.store.db.conn.execute(queued).fetchone()[0] == 0
    assert billing_mails(sink) == []  # March went once, before the database was lost
    assert not (march / "Tmp.txt").exists()


async def test_an_account_of_the_backup_with_sms_of_the_month_but_no_file_leaves_the_month_not_whole(
    tmp_path: Path,
) -> None:
    relay = free_port()
    traffic = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 8)]}
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=traffic)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    last, first = await started(cfg, relay, "2026-03")
    assert last == "2026-03" and len(first) == 5, first
    (cfg.billing_dir / "2026-03" / "beta.txt").unlink()  # beta's file, billed, gone
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "taken as done" not in res.stdout, res.stdout
    assert "the files of 2026-03 on disk are not whole: it is billed again at the next start" in res.stdout
    last, second = await started(cfg, relay, "2026-03")
    assert last == "2026-03" and second == [], second  # written again; every file's record kept
