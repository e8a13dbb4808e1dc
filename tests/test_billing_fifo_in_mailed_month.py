"""A FIFO where a mailed month's account file goes: `billing run --month` of that month read it (the
check that the file on disk is the one just rendered opened any path) and hung forever."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.billing_world import ROOT
from tests.test_restore_billing_lost import billed_march


async def test_a_fifo_in_a_mailed_month_is_written_over_not_read(tmp_path: Path) -> None:
    path, cfg, _backup, _relay = await billed_march(tmp_path)
    acme = cfg.billing_dir / "2026-03" / "acme.txt"
    acme.unlink()
    os.mkfifo(acme)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gateway.cli", "-c", str(path), "billing", "run", "--month", "2026-03"]
    try:
        res = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, env=env, timeout=60
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError("billing run --month 2026-03 hung on the FIFO at acme.txt") from e
    assert res.returncode == 0, res.stderr
    assert stat.S_ISREG(acme.lstat().st_mode)
    assert acme.stat().st_size > 0
