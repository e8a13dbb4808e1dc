"""The month's record of its billing mails (`<month>/_mailed`) and the database cannot change in one
step: `smsgw billing run --send` killed -9 after its mails were committed and before it wrote their
record, the relay then taking them, and the database lost and restored from a backup. The restore
said the month was never mailed and the next start billed and mailed it a second time. And a
record says the mails were queued, not that the relay took them: the restore says so. Real CLI
processes (one killed at that point), the real daemon, a real SMTP sink, real SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from billing_reports import mailedrecord
from billing_reports.monthly import Month
from tests.billing_world import ROOT, at, billing_mails, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date
from tests.test_restore_billing_lost import lose

NOW = at(2026, 4, 2, 9)

# `smsgw billing run` killed -9 where it writes the marks of the mails it committed into the record.
KILLED_AT_RECORD = """
import os, signal
from billing_reports import mailedrecord

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

mailedrecord.keep = killed
from gateway.cli.main import main
raise SystemExit(main())
"""


def due_now(db: Path) -> None:
    """The CLI queued its mails by the machine's clock; the daemon reads the one the test gives it."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued'")


def killed_send(config: Path) -> subprocess.CompletedProcess[str]:
    argv = ["smsgw", "-c", str(config), "billing", "run", "--month", "2026-03", "--send"]
    return subprocess.run(
        [sys.executable, "-c", KILLED_AT_RECORD, *argv[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )


async def test_a_send_killed_before_its_record_is_not_mailed_twice_after_a_restore(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    res = await asyncio.to_thread(killed_send, path)
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
    due_now(cfg.db_path)
    # The relay takes the three mails committed (the daemon's clock still in March: nothing to bill).
    march = cfg.billing_dir / "2026-03"
    assert sorted(mailedrecord.intents(march)) == ["1", "summary"] and mailedrecord.read(march) is None
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: at(2026, 3, 31, 12)) as gw:
            await gw.until(lambda: len(billing_mails(sink)) == 3, timeout=60)
            held = mailedrecord.marks(gw.store.db.conn, Month(2026, 3))
    assert sorted(held) == ["1", "summary"] and mailedrecord.read(march) == held
    assert mailedrecord.intents(march) == {}
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "never mailed" not in res.stdout, res.stdout
    assert "the billing of 2026-03 taken as done from the files in billing_dir" in res.stdout, res.stdout
    # The daemon's billing job put the marks the database held in place of both files' `queuing`
    # lines, the killed run gone (`mailedrecord.record_marked`): the record says they were queued.
    assert "stopped while it queued" not in res.stdout, res.stdout
    assert "the record says the mails of 2026-03 were queued, not that the relay took them" in res.stdout
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
    assert billing_mails(sink) == []  # they went once, before the database was lost


async def test_a_restore_says_a_month_taken_from_its_record_was_queued_not_that_it_went(
    tmp_path: Path,
) -> None:
    # Queued by `--send` while the relay was down, the database then lost: the mails went with it.
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send")
    assert res.returncode == 0 and "3 mail(s) queued" in res.stdout, res.stdout + res.stderr
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the billing of 2026-03 taken as done" in res.stdout, res.stdout
    assert (
        "the record says the mails of 2026-03 were queued, not that the relay took them: if the database"
        " was lost before it did, they never went (the relay's log says which did;"
        " `smsgw billing run --month 2026-03 --send --again` bills that month again and mails it, as a"
        " correction)"
    ) in res.stdout, res.stdout
    assert "stopped while it queued" not in res.stdout, res.stdout  # that run recorded its marks
    # The command the line names mails the month's three files.
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send", "--again")
    assert res.returncode == 0 and "3 mail(s) queued" in res.stdout, res.stdout + res.stderr
    due_now(cfg.db_path)
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await gw.until(lambda: len(billing_mails(sink)) == 3, timeout=60)
    assert sorted(m.filename for m in billing_mails(sink)) == [
        "2026-03-acme.txt",
        "2026-03-acme.txt",
        "2026-03-summary.txt",
    ]
