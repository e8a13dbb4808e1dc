"""The month's record of its billing mails (`<month>/_mailed`) names each file a run was about to
mail, not the whole month: `smsgw billing run --send` killed -9 before its first mail was committed
left a `queuing` line covering every file, and a restore over the database lost took the month as
mailed, so nobody was ever sent its bill; a `--send --account acme` line covered the other accounts
and the summary too. Now the restore takes as mailed only the files the record names (by a mark, or
by a `queuing` line, said to be maybe not queued), and the next start bills the month and mails the
rest. Real CLI processes (one killed), the real daemon, a real SMTP sink, real SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from structlog.testing import capture_logs

from billing_reports.mailedrecord import RECORD
from gateway.config import Config
from tests.billing_world import ROOT, at, billing_mails, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing_lost import lose

NOW = at(2026, 4, 2, 9)
TRAFFIC = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 8)]}

# `smsgw billing run` killed -9 where it commits the mails of its first file.
KILLED_AT_FIRST_QUEUE = """
import os, signal
from billing_reports import job

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

job._queue = killed
from gateway.cli.main import main
raise SystemExit(main())
"""


async def restored_and_started(path: Path, cfg: Config, backup: Path, relay: int) -> tuple[str, list[str]]:
    """The database lost, the real restore, the next start: the restore's stdout, and the billing
    mails sent (recipient and file) once the start's run is done."""
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await gw.until(lambda: any(e["event"] == "billing.month_billed" for e in logs), timeout=60)
                assert last_billed(gw.store) == "2026-03"
                await gw.until(lambda: len(billing_mails(sink)) >= 3, timeout=60)
    return res.stdout, sorted(f"{m.rcpt} {m.filename}" for m in billing_mails(sink))


# What the next start mails: beta's file (to beta and the operator) and the summary, not acme's.
REST = [
    "billing@beta.pl 2026-03-beta.txt",
    "postmaster@example.com 2026-03-beta.txt",
    "postmaster@example.com 2026-03-summary.txt",
]


async def test_a_send_killed_before_its_first_mail_leaves_the_rest_of_the_month_to_be_mailed(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=TRAFFIC)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    argv = ["-c", str(path), "billing", "run", "--month", "2026-03", "--send"]
    res = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED_AT_FIRST_QUEUE, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
    said, mails = await restored_and_started(path, cfg, backup, relay)
    assert "the billing of 2026-03 taken as done" not in said, said
    assert "the record says the mails of 2026-03 were queued" not in said, said  # it holds no mark
    assert "a run of 2026-03 stopped while it queued the mails of acme's file (since " in said, said
    assert (
        f"queuing in {RECORD}): taken as mailed, not mailed twice, but they may not have been queued (the"
        " relay's log says which went; `smsgw billing run --month 2026-03 --send --again` bills that month"
        " again and mails it, as a correction)"
    ) in said, said
    assert (
        f"the files of 2026-03 on disk were not all mailed ({RECORD}): it is billed again at the next start"
        " (its files written again and mailed, but for acme's file, which the record names as mailed;"
        " 1 file(s) mailed kept in mailed-*/)"
    ) in said, said
    assert mails == REST, mails


async def test_a_send_for_one_account_leaves_the_others_and_the_summary_to_be_mailed(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=TRAFFIC)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    # The month's files written whole by a run by hand, then acme's alone mailed.
    assert (res := await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03")).returncode == 0
    res = await asyncio.to_thread(
        cli, path, "billing", "run", "--month", "2026-03", "--send", "--account", "acme"
    )
    assert res.returncode == 0 and "2 mail(s) queued" in res.stdout, res.stdout + res.stderr
    said, mails = await restored_and_started(path, cfg, backup, relay)
    assert "the billing of 2026-03 taken as done" not in said, said
    assert "stopped while it queued" not in said, said
    assert "the record says the mails of 2026-03 were queued" in said, said
    assert "but for acme's file, which the record names as mailed" in said, said
    assert mails == REST, mails
