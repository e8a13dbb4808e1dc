"""`smsgw restore` over a database lost, when the month mailed since the backup has files that are not
whole (a run by hand without `--send`, killed while it wrote them again; a disk that filled during
one) though its `_mailed` record names every file as mailed: the marks were kept only for a month
"not all mailed", so the next start mailed the whole month a second time, to every account and the
operator. The files the record names as mailed now keep their marks whatever the month is billed
again for: the next start writes the files again and mails none. Real CLI processes (one killed -9),
the real daemon, a real SMTP sink, real SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from billing_reports.files import INCOMPLETE
from tests.billing_world import ROOT, at, cli, prepare
from tests.conftest import free_port
from tests.test_restore_billing_later_months import started
from tests.test_restore_billing_lost import lose

TRAFFIC = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 8)]}

# `smsgw billing run` killed -9 as it writes its second file.
KILLED_AT_SECOND_WRITE = """
import os, signal
from billing_reports import writer

written = writer.write_atomic
calls = []

def killed(path, chunks):
    calls.append(path)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return written(path, chunks)

writer.write_atomic = killed
from gateway.cli.main import main
raise SystemExit(main())
"""


async def test_a_mailed_month_left_not_whole_by_a_run_by_hand_is_not_mailed_again_after_a_restore(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=TRAFFIC)
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    last, first = await started(cfg, relay, "2026-03")
    assert last == "2026-03" and len(first) == 5, first
    argv = ["-c", str(path), "billing", "run", "--month", "2026-03"]
    res = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED_AT_SECOND_WRITE, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
    assert (cfg.billing_dir / "2026-03" / INCOMPLETE).exists()
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert (
        "the files of 2026-03 on disk are not whole: it is billed again at the next start (its files"
        " written again, not mailed: the record names each as mailed"
    ) in res.stdout, res.stdout
    last, second = await started(cfg, relay, "2026-03")
    assert last == "2026-03"
    assert second == [], second  # mailed once, before the database was lost
    assert not (cfg.billing_dir / "2026-03" / INCOMPLETE).exists()
