"""`smsgw restore` over a database that is damaged or gone, after a month was billed and mailed since
the backup: nothing can be carried from it, and the billing files on disk are the record.

Restored as the backup had it, the next start billed the month again from the backup's rows (one SMS
of the three the account was billed), mailed every account and the operator a second time as if it
were the first, and wrote over the mailed files with no copy kept (R-5.1).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from billing_reports.mailed import whole_sha
from tests.billing_world import at, billing_mails, cli, fill, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date

NOW = at(2026, 4, 2, 9)


async def billed_march(tmp_path: Path) -> tuple[Path, Any, Path, int]:
    """A backup with February billed, two March SMS after it, and March billed and mailed by the
    daemon since: (config, its Config, the backup, the relay's port)."""
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    from gateway.store.db import Store

    store = Store.open(cfg.db_path)
    try:
        fill(store, store.accounts.get_account("acme").id, [at(2026, 3, 20, 8), at(2026, 3, 21, 8)])
    finally:
        store.close()
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await gw.until(lambda: len(billing_mails(sink)) == 3 and last_billed(gw.store) == "2026-03")
            sent = "SELECT COUNT(*) FROM outbox WHERE state = 'sent'"
            await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == 3, timeout=60)
    return path, cfg, backup, relay


def lose(db: Path, how: str) -> None:
    if how == "missing":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    else:
        with open(db, "r+b") as f:
            f.seek(db.stat().st_size // 2)
            f.write(os.urandom(8192))


@pytest.mark.parametrize("how", ["damaged", "missing"])
async def test_a_month_billed_since_the_backup_stands_on_disk_after_a_restore_over_a_lost_database(
    tmp_path: Path, how: str
) -> None:
    path, cfg, backup, relay = await billed_march(tmp_path)
    march = cfg.billing_dir / "2026-03"
    mailed = {p.name: p.read_bytes() for p in march.glob("*.txt")}
    assert b"\nend\t3\tsha256:" in mailed["acme.txt"]
    lose(cfg.db_path, how)
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "nothing carried from the replaced database" in res.stdout, res.stdout
    said = (
        "; the billing of 2026-03 taken as done from the files in billing_dir, which stand as mailed"
        " (not billed or mailed again); the record says the mails of 2026-03 were queued, not that the"
        " relay took them: if the database was lost before it did, they never went (the relay's log says"
        " which did; `smsgw billing run --month 2026-03 --send --again` bills that month again and mails"
        " it, as a correction)"
    )
    assert said in res.stdout, res.stdout
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
    assert billing_mails(sink) == []  # March went once, before the restore
    assert {p.name: p.read_bytes() for p in march.glob("*.txt")} == mailed
    # Billed again by hand from the backup's rows (one SMS): the file mailed is kept as its copy.
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send", "--again")
    assert res.returncode == 0, res.stderr
    assert b"\nend\t1\tsha256:" in (march / "acme.txt").read_bytes()
    copies = sorted(march.glob("mailed-*/*.txt"))
    assert sorted(p.name for p in copies) == ["_summary.txt", "acme.txt"], copies
    assert {p.name: p.read_bytes() for p in copies} == mailed


async def test_a_month_whose_files_are_not_whole_is_billed_again_after_a_restore_over_a_lost_database(
    tmp_path: Path,
) -> None:
    path, cfg, backup, relay = await billed_march(tmp_path)
    acme = cfg.billing_dir / "2026-03" / "acme.txt"
    acme.write_bytes(acme.read_bytes()[:-20])  # cut short: its `end` line does not check
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert (
        "the files of 2026-03 on disk are not whole: it is billed again at the next start (its files written"
        " again, not mailed: the record names each as mailed"
    ) in res.stdout, res.stdout
    assert "taken as done" not in res.stdout, res.stdout
    # Written again from the backup's rows; not mailed: the record names each file as mailed, and the
    # account and the operator hold the whole file (a copy on disk cut short is no bill unsent).
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await gw.until(lambda: any(e["event"] == "billing.month_billed" for e in logs))
                assert last_billed(gw.store) == "2026-03"
                queued = "SELECT COUNT(*) FROM outbox WHERE kind = 'billing'"
                assert gw.store.db.conn.execute(queued).fetchone()[0] == 0
    assert billing_mails(sink) == []
    assert whole_sha(acme) is not None  # written again whole


async def test_a_mailed_file_whose_mark_is_lost_is_kept_before_a_run_writes_it_again(tmp_path: Path) -> None:
    # A month recorded billed was mailed: its whole file on disk is the one mailed, mark or no mark.
    path, cfg, _backup, _relay = await billed_march(tmp_path)
    march = cfg.billing_dir / "2026-03"
    mailed = (march / "acme.txt").read_bytes()
    with closing(sqlite3.connect(cfg.db_path)) as conn, conn:
        conn.execute("DELETE FROM billing_state WHERE key GLOB 'mailed/*'")
        (acme,) = conn.execute("SELECT id FROM accounts WHERE name = 'acme'").fetchone()
    from gateway.store.db import Store

    store = Store.open(cfg.db_path)
    try:  # a late row: the month's file is written with other bytes
        fill(store, acme, [at(2026, 3, 25, 8)])
    finally:
        store.close()
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03")
    assert res.returncode == 0, res.stderr
    assert b"\nend\t4\tsha256:" in (march / "acme.txt").read_bytes()
    copies = list(march.glob("mailed-*/acme.txt"))
    assert [p.read_bytes() for p in copies] == [mailed], copies
