"""`smsgw status` after the daemon's start was killed -9 while it upgraded the database.

It named the daemon before the upgrade, whose pid the status file still holds ("pid N has exited
without a clean stop"), not the start cut short that the start file names with what it did; and it
then ran the rest of the upgrade itself, 21-27 s with nothing said for 400,000 answer mails, so a
monitoring check under a timeout killed it every time. Now it names that start and leaves the
upgrade to the daemon's next start. Real processes: the daemon killed, the CLI, a real SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway import __version__
from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import free_port
from tests.test_long_start import (
    OLD_SCHEMA,
    daemon,
    events,
    old_database,
    release,
    until,
    version,
    write_lock,
)
from tests.test_process import smsgw, write_config


def test_status_names_a_start_killed_mid_upgrade_and_leaves_the_upgrade_to_the_next_start(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    before = {"pid": gone.pid, "updated_at": time.time() - 60, "version": "0.2.38"}
    (path.parent / "status.json").write_text(json.dumps(before))  # the daemon before the upgrade
    lock = write_lock(path)  # its first migration waits for it: killed there, at no moment of chance
    try:
        with daemon(config, dict(os.environ)) as proc:
            until(lambda: any(e["event"] == "store.lock_wait" for e in events(config)), "the daemon waits")
            start = json.loads((path.parent / "starting.json").read_text())
            assert start["pid"] == proc.pid and start["phase"] == "upgrading", start
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    finally:
        release(lock)
    left = version(path)
    assert left == OLD_SCHEMA
    res = smsgw(config, "status")
    assert res.returncode == 3, res.stdout + res.stderr
    cut = (
        f"daemon    not running (the start of pid {proc.pid}, smsgw {__version__} was cut short while"
        f" upgrading the database from schema {OLD_SCHEMA} to {SCHEMA_VERSION}"
    )
    assert cut in res.stdout, res.stdout
    assert f"pid {gone.pid}" not in res.stdout, res.stdout
    assert f"\nschema    {left} (this smsgw's: {SCHEMA_VERSION})\n" in res.stdout, res.stdout
    said = (
        f"database {path} is at schema {left}, older than this smsgw's ({SCHEMA_VERSION}): it waits for"
        " its upgrade, which the daemon's start does (`smsgw run`"
    )
    assert said in res.stderr and "upgraded" not in res.stderr, res.stderr
    assert version(path) == left
    res = smsgw(config, "status", "--json")
    assert res.returncode == 3, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["schema"] == left and report["installed_schema"] == SCHEMA_VERSION, report
    assert report["daemon"]["state"].startswith(cut.removeprefix("daemon    ")), report
    assert version(path) == left
    # The next start finishes the upgrade, as the line says.
    with daemon(config, dict(os.environ)):
        until(lambda: any(e["event"] == "daemon.ready" for e in events(config)), "ready", 60)
    assert version(path) == SCHEMA_VERSION
