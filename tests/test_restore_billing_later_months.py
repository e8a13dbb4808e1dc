"""`smsgw restore` over a database lost, when the first month billed since the backup cannot be taken
from disk: the reading of the `_mailed` records stopped at that month, so every later month was
billed and mailed a second time at the next start, to every account and the operator, even one whose
files were whole and whose record named each as mailed, and the restore said nothing of it. Each
later month now keeps the marks its own record holds, and the restore says what the next start does
with each month. Real CLI processes (backup, restore), the real daemon, a real SMTP sink, real SQLite.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from billing_reports.mailedrecord import RECORD
from tests.billing_world import at, billing_mails, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing_lost import lose

NOW = at(2026, 4, 2, 9)
TRAFFIC = {"acme": [at(2026, 2, 2, 8), at(2026, 3, 2, 8)], "beta": [at(2026, 2, 3, 8), at(2026, 3, 3, 8)]}
FEBRUARY = [
    "billing@acme.pl 2026-02-acme.txt",
    "billing@beta.pl 2026-02-beta.txt",
    "postmaster@example.com 2026-02-acme.txt",
    "postmaster@example.com 2026-02-beta.txt",
    "postmaster@example.com 2026-02-summary.txt",
]


async def started(cfg: Any, relay: int, month: str) -> tuple[str | None, list[str]]:
    """The daemon started at NOW until its run billed `month` and every billing mail it queued went:
    `last_billed` then, and the billing mails (recipient and file) the relay took."""
    pending = "SELECT COUNT(*) FROM outbox WHERE kind = 'billing' AND state != 'sent'"

    def billed(logs: list[dict[str, Any]]) -> bool:
        return any(e["event"] == "billing.month_billed" and e["month"] == month for e in logs)

    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await gw.until(lambda: billed(logs), timeout=60)
                await gw.until(lambda: gw.store.db.conn.execute(pending).fetchone()[0] == 0, timeout=60)
                last = last_billed(gw.store)
    return last, sorted(f"{m.rcpt} {m.filename}" for m in billing_mails(sink))


async def test_a_month_mailed_after_one_moved_away_keeps_its_record_and_is_not_mailed_again(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=TRAFFIC)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    last, first = await started(cfg, relay, "2026-03")
    assert last == "2026-03" and len(first) == 10, first
    assert (cfg.billing_dir / "2026-03" / RECORD).is_file()
    shutil.move(cfg.billing_dir / "2026-02", tmp_path / "archive-2026-02")  # February archived off the box
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "taken as done" not in res.stdout, res.stdout
    # (The later months, after the daemon's clock, by the restore's, which is the real one.)
    assert "no files of 2026-02, 2026-04" in res.stdout, res.stdout
    assert (
        " in billing_dir: each billed at the next start, its files written and mailed (a month mailed"
        " before and moved away is mailed again)"
    ) in res.stdout, res.stdout
    assert (
        "the files of 2026-03 on disk are whole, but 2026-02 before it is billed again: it is billed again"
        " at the next start (its files written again, not mailed: the record names each as mailed"
    ) in res.stdout, res.stdout
    assert "the record says the mails of 2026-03 were queued, not that the relay took them" in res.stdout
    last, second = await started(cfg, relay, "2026-03")
    assert last == "2026-03"
    assert second == FEBRUARY, second  # the month moved away, said; March not a second time
