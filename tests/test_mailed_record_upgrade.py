"""A month billed and mailed by a release before 0.2.39 has no `<month>/_mailed` record, only the
database's marks. Restored over that database lost, the month was taken as never mailed: billed
again from the backup's rows at the next start and mailed to every account and the operator a second
time. The daemon's billing job now writes the record from the marks. Real CLI processes (backup,
restore), the real daemon, a real SMTP sink, real SQLite files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from billing_reports import mailedrecord
from billing_reports.mailedrecord import LOCK, RECORD
from billing_reports.monthly import Month
from tests.billing_world import billing_mails, cli, last_billed
from tests.conftest import running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date
from tests.test_restore_billing_lost import NOW, billed_march, lose


async def test_a_month_mailed_without_a_record_gets_one_at_start_and_is_not_mailed_again_after_a_restore(
    tmp_path: Path,
) -> None:
    path, cfg, backup, relay = await billed_march(tmp_path)
    march = cfg.billing_dir / "2026-03"
    # As a release before 0.2.39 left it: the files and the database's marks, no record.
    (march / RECORD).unlink()
    (march / LOCK).unlink()
    with capture_logs() as logs:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await up_to_date(logs, gw)
            conn = gw.store.db.conn
            held = mailedrecord.marks(conn, Month(2026, 3))
            acme = gw.store.accounts.get_account("acme").id
    assert sorted(held) == [str(acme), "summary"], held
    assert mailedrecord.read(march) == held
    assert any(e["event"] == "billing.recorded_from_marks" and e["months"] == ["2026-03"] for e in logs)
    mailed = {p.name: p.read_bytes() for p in march.glob("*.txt")}
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "never mailed" not in res.stdout, res.stdout
    assert "the billing of 2026-03 taken as done from the files in billing_dir" in res.stdout, res.stdout
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
    assert billing_mails(sink) == []  # March went once, before the database was lost
    assert {p.name: p.read_bytes() for p in march.glob("*.txt")} == mailed
