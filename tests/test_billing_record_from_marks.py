"""The daemon's billing job writes the `_mailed` record of a month mailed by a release that wrote none
(before 0.2.39), from the database's marks (`mailedrecord.record_marked`), so that a restore over
that database lost does not mail the month a second time. It skipped every month that had a record
at all, and one month it could not record stopped it for every later month:

- such a month sent again by hand (`billing run --send --again --account acme`) with that run killed
  at its first mail kept a record holding that run's `queuing` line alone: after a restore over the
  database lost, the next start mailed beta's file and the summary a second time; completed, the
  record dropped that line even when the run was killed before its commit (the database held the
  older mark of acme's file), and the restore no longer said that acme's mails may not have gone;
- a month's directory refused (another user's; a FIFO in place of the record's lock) left no record
  for any later month, the daemon logging only that the whole job failed.

Real CLI processes (one killed -9), the real daemon, a real SMTP sink, real SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from billing_reports import mailedrecord
from billing_reports.mailedrecord import LOCK, RECORD
from billing_reports.monthly import Month
from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway.store.db import Store
from tests.billing_world import ROOT, at, billing_mails, cli, fill, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date
from tests.test_restore_billing_intent import KILLED_AT_FIRST_QUEUE, TRAFFIC
from tests.test_restore_billing_later_months import NOW
from tests.test_restore_billing_lost import lose

# The run killed just after its first mail's commit, before it records it.
KILLED_AFTER_FIRST_QUEUE = KILLED_AT_FIRST_QUEUE.replace(
    "def killed(*args, **kwargs):\n",
    "queue = job._queue\n\ndef killed(*args, **kwargs):\n    queue(*args, **kwargs)\n",
)


def as_before_039(directory: Path) -> None:
    """The month as a release before 0.2.39 left it: its files and the database's marks, no record."""
    (directory / RECORD).unlink()
    (directory / LOCK).unlink()


def a_late_sms(cfg: object) -> None:
    """An SMS of acme's in March stored after its bill was mailed (a late report): `--again` mails a
    changed file, whose mark is never the one the database holds (the same file in the same second)."""
    store = Store.open(cfg.db_path)  # type: ignore[attr-defined]
    try:
        fill(store, 1, [at(2026, 3, 4, 8)])
    finally:
        store.close()


def put_last_billed(cfg: object, month: str) -> None:
    store = Store.open(cfg.db_path)  # type: ignore[attr-defined]
    try:
        BillingRepo(store.db, store.clock).put(LAST_BILLED, month)
    finally:
        store.close()


@pytest.mark.parametrize("committed", [False, True], ids=["killed before its commit", "killed after it"])
async def test_a_send_again_killed_on_a_month_mailed_without_a_record_leaves_a_whole_record(
    tmp_path: Path, committed: bool
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=TRAFFIC)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send")
    assert res.returncode == 0 and "5 mail(s) queued" in res.stdout, res.stdout + res.stderr
    march = cfg.billing_dir / "2026-03"
    as_before_039(march)
    put_last_billed(cfg, "2026-03")  # that release's daemon billed March
    a_late_sms(cfg)
    argv = ["-c", str(path), "billing", "run", "--month", "2026-03", "--send", "--again", "--account", "acme"]
    res = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED_AFTER_FIRST_QUEUE if committed else KILLED_AT_FIRST_QUEUE, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
    assert mailedrecord.read(march) is None and list(mailedrecord.intents(march)) == ["1"]
    intent = mailedrecord.intents(march)
    with capture_logs() as logs:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await up_to_date(logs, gw)
            held = mailedrecord.marks(gw.store.db.conn, Month(2026, 3))
    assert sorted(held) == ["1", "2", "summary"], held
    assert (held["1"] == intent["1"]) is committed
    if committed:  # the killed run's line, its own mark in the database
        assert mailedrecord.read(march) == held and mailedrecord.intents(march) == {}
    else:  # its line stays, acme's older mark left out of the record
        assert mailedrecord.read(march) == {w: m for w, m in held.items() if w != "1"}
        assert mailedrecord.intents(march) == intent
    assert any(e["event"] == "billing.recorded_from_marks" and e["months"] == ["2026-03"] for e in logs)
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the billing of 2026-03 taken as done from the files in billing_dir" in res.stdout, res.stdout
    assert "were not all mailed" not in res.stdout, res.stdout
    stopped = "a run of 2026-03 stopped while it queued the mails of acme's file"
    assert (stopped in res.stdout) is not committed, res.stdout
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
                assert last_billed(gw.store) == "2026-03"
                queued = "SELECT COUNT(*) FROM outbox WHERE kind = 'billing'"
                assert gw.store.db.conn.execute(queued).fetchone()[0] == 0
    assert billing_mails(sink) == []  # March went once, before the database was lost


@pytest.mark.parametrize("refused", ["another user's", "a FIFO for its lock"])
async def test_a_month_whose_record_cannot_be_written_leaves_the_later_months_recorded(
    tmp_path: Path, refused: str
) -> None:
    if refused == "another user's" and os.geteuid() != 0:
        pytest.skip("giving a directory to another user takes root")
    relay = free_port()
    traffic = {"acme": [at(2026, 1, 2, 8), at(2026, 2, 2, 8), at(2026, 3, 2, 8)]}
    path, cfg = prepare(tmp_path, relay, last_billed="2026-03", traffic=traffic)
    for month in ("2026-01", "2026-02", "2026-03"):
        res = await asyncio.to_thread(cli, path, "billing", "run", "--month", month, "--send")
        assert res.returncode == 0, res.stdout + res.stderr
        as_before_039(cfg.billing_dir / month)
    january = cfg.billing_dir / "2026-01"
    if refused == "another user's":
        os.chown(january, 65534, 65534)  # copied back from an archive by another user
    else:
        os.mkfifo(january / LOCK)
    with capture_logs() as logs:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await up_to_date(logs, gw)
    for month in ("2026-02", "2026-03"):
        assert mailedrecord.read(cfg.billing_dir / month) is not None, month
    assert not (january / RECORD).exists()
    assert any(
        e["event"] == "billing.recorded_from_marks" and e["months"] == ["2026-02", "2026-03"] for e in logs
    )
    failed = [e for e in logs if e["event"] == "billing.record_from_marks_failed"]
    assert failed and all(e.get("month") == "2026-01" for e in failed), failed
    assert str(january) in failed[0]["error"], failed


async def test_a_send_again_killed_before_its_commit_keeps_its_line_through_another_runs_record(
    tmp_path: Path,
) -> None:
    """The next run's own record (`keep`) dropped the killed run's line too, acme's older mark in its
    place: the restore took acme's changed file as mailed and said nothing."""
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=TRAFFIC)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send")
    assert res.returncode == 0 and "5 mail(s) queued" in res.stdout, res.stdout + res.stderr
    march = cfg.billing_dir / "2026-03"
    a_late_sms(cfg)
    again = ["billing", "run", "--month", "2026-03", "--send", "--again", "--account"]
    res = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED_AT_FIRST_QUEUE, "-c", str(path), *again, "acme"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
    intent = mailedrecord.intents(march)
    assert list(intent) == ["1"]
    res = await asyncio.to_thread(cli, path, *again, "beta")
    assert res.returncode == 0, res.stdout + res.stderr
    assert mailedrecord.intents(march) == intent
    assert sorted(mailedrecord.read(march) or {}) == ["2", "summary"]
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "a run of 2026-03 stopped while it queued the mails of acme's file" in res.stdout, res.stdout
