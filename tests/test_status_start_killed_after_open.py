"""`smsgw status` after a start killed between opening (and upgrading) its database and writing its
first status file.

The start file went as soon as the database was open, and the status file was still the one of the
daemon before the upgrade: status named that daemon's pid as the one that "exited without a clean
stop", nothing said of the start that upgraded the database. The start file now stays until the
daemon's first status file. A real process runs the daemon's own start (`open_recovered`) on a real
SQLite file of an older schema and is killed -9 right after it, then the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gateway import __version__
from gateway.config import load_config
from gateway.statusfile import read_status
from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import free_port, running_gateway
from tests.test_long_start import OLD_SCHEMA, old_database, version
from tests.test_process import ROOT, smsgw, write_config

START_THEN_KILLED = """
import os, signal, sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
from gateway.config import load_config
from gateway.recovery import open_recovered
cfg = load_config(Path(sys.argv[1]))
open_recovered(cfg, time.time, ZoneInfo("UTC"))
print(f"PID={os.getpid()}", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # before the daemon's first status file
"""


async def test_a_start_killed_after_it_opened_the_database_is_named_not_the_daemon_before_it(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    before = {"pid": gone.pid, "updated_at": time.time() - 60, "version": "0.2.40"}
    (path.parent / "status.json").write_text(json.dumps(before))  # the daemon before the upgrade
    ran = subprocess.run(
        [sys.executable, "-c", START_THEN_KILLED, str(config)], cwd=ROOT, capture_output=True, text=True
    )
    assert ran.returncode == -9, ran.stderr
    killed = int(ran.stdout.split("PID=")[1].split()[0])
    assert version(path) == SCHEMA_VERSION
    res = smsgw(config, "status")
    assert f"pid {gone.pid}" not in res.stdout, res.stdout
    said = (
        f"daemon    not running (the start of pid {killed}, smsgw {__version__} was cut short while opening"
        f" the database, upgraded from schema {OLD_SCHEMA} to {SCHEMA_VERSION})"
    )
    assert said in res.stdout, res.stdout
    report = json.loads(smsgw(config, "status", "--json").stdout)
    assert str(killed) in report["daemon"]["state"] and str(gone.pid) not in report["daemon"]["state"], report
    # A start that goes on: its start file ends with its first status file.
    cfg = load_config(config)
    async with running_gateway(cfg) as gw:
        await gw.until(lambda: (read_status(cfg.state_dir) or {}).get("pid") == os.getpid())
        await gw.until(lambda: not (cfg.state_dir / "starting.json").exists())
