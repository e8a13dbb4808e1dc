"""`smsgw restore` over a database lost after an upgrade from a release before 0.2.39, before this
release's daemon ever started on it: the months that release billed and mailed have their files on
disk and no `_mailed` record (it wrote none, and the daemon that writes it from the database's marks
never ran). The restore took them as never mailed: the next start billed them again from the
backup's older rows, mailed every account and the operator a second time with the wrong figures, and
wrote over the files mailed with no copy kept. Real CLI processes (backup, restore, billing run), the
real daemon, a real SMTP sink, real SQLite files, the billing files on disk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from billing_reports.mailedrecord import LOCK, RECORD
from tests.billing_world import at, billing_mails, cli, fill, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date
from tests.test_restore_billing_lost import NOW, billed_march, lose


def as_before_the_record(month: Path) -> None:
    """The month as a release before 0.2.39 left it: its files, no record."""
    (month / RECORD).unlink()
    (month / LOCK).unlink(missing_ok=True)


async def test_a_month_mailed_before_the_record_existed_is_kept_and_not_mailed_again(tmp_path: Path) -> None:
    path, cfg, backup, relay = await billed_march(tmp_path)
    march = cfg.billing_dir / "2026-03"
    as_before_the_record(march)
    mailed = {p.name: p.read_bytes() for p in march.glob("*.txt")}
    assert b"\nend\t3\tsha256:" in mailed["acme.txt"]  # the backup holds one of the three SMS
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "never mailed" not in res.stdout, res.stdout
    assert (
        f"the files of 2026-03 on disk have no record that their mails were queued ({RECORD}): from a"
        " release before 0.2.39, which mailed them and kept none, or from a run without --send or one"
        " killed before it queued them, which mailed nothing: taken as done, not mailed again (2 file(s)"
        " kept in mailed-*/); `smsgw billing run --month 2026-03 --send --again` bills that month again"
        " and mails it"
    ) in res.stdout, res.stdout
    copies = sorted(march.glob("mailed-*/*.txt"))
    assert {p.name: p.read_bytes() for p in copies} == mailed, copies
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
    assert billing_mails(sink) == []  # mailed once, by the old release
    assert {p.name: p.read_bytes() for p in march.glob("*.txt")} == mailed
    # The operator's command mails it, from the backup's rows; the files mailed stay as their copies.
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send", "--again")
    assert res.returncode == 0, res.stderr
    assert b"\nend\t1\tsha256:" in (march / "acme.txt").read_bytes()
    assert {p.name: p.read_bytes() for p in march.glob("mailed-*/*.txt")} == mailed


async def test_a_month_without_a_record_after_one_billed_again_is_written_again_not_mailed(
    tmp_path: Path,
) -> None:
    relay = free_port()
    traffic = {"acme": [at(2026, 2, 2, 8), at(2026, 3, 2, 8)]}
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=traffic)
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
            await gw.until(lambda: len(billing_mails(sink)) == 6 and last_billed(gw.store) == "2026-03")
            sent = "SELECT COUNT(*) FROM outbox WHERE state = 'sent'"
            await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == 6, timeout=60)
    february, march = cfg.billing_dir / "2026-02", cfg.billing_dir / "2026-03"
    as_before_the_record(march)
    mailed = {p.name: p.read_bytes() for p in march.glob("*.txt")}
    acme = february / "acme.txt"
    acme.write_bytes(acme.read_bytes()[:-20])  # cut short: February is billed again
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "never mailed" not in res.stdout, res.stdout
    assert (
        "the files of 2026-03 on disk are whole, but 2026-02 before it is billed again: it is billed again"
        " at the next start (its files written again, not mailed: they have no record that their mails"
        f" were queued ({RECORD}): from a release before 0.2.39"
    ) in res.stdout, res.stdout
    assert {p.name: p.read_bytes() for p in march.glob("mailed-*/*.txt")} == mailed
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await gw.until(lambda: last_billed(gw.store) == "2026-03")
                await gw.until(lambda: any(e["event"] == "billing.month_billed" for e in logs))
                queued = "SELECT COUNT(*) FROM outbox WHERE kind = 'billing'"
                assert gw.store.db.conn.execute(queued).fetchone()[0] == 0
    assert billing_mails(sink) == []
    assert {p.name: p.read_bytes() for p in march.glob("mailed-*/*.txt")} == mailed
