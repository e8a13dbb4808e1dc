"""`smsgw status` with the daemon stopped and another process holding the database locked.

With a stopped daemon's database held as an sqlite3 shell holds it (`PRAGMA locking_mode=EXCLUSIVE;
BEGIN EXCLUSIVE`), `status` and `status --json` each waited some 34 s in SQLite's busy wait, then
exited 1 ("runs with trouble") with stdout empty. A monitoring check timed out, or read a stopped
gateway as running. Whether the daemon runs is told by its lock and status file, which need no
database: 3, not running, with the holder's pid named, within a few seconds, and with `--json` one
object on stdout saying why.

Real peers: `smsgw status` as a process, a real SQLite file, a second process holding it with the
sqlite3 module, and one holding the state directory's lock as a daemon does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.config import load_config
from gateway.statelock import LOCK_FILE
from tests.test_process import smsgw
from tests.test_status_lock import HOLDER, fresh_status, process, state

# What such an sqlite3 shell does: exclusive locking mode, a write transaction left open.
LOCKER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("PRAGMA locking_mode=EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("CREATE TABLE IF NOT EXISTS held_by_test(x)")
print("held", flush=True)
sys.stdin.read()
c.execute("ROLLBACK")
"""
# SQLite's busy wait alone was 30 s (34 s in all): a bound well above the few seconds status takes
# now, and below that, so that a loaded machine does not fail it and the old wait still does.
BOUND_SECONDS = 20.0


@contextmanager
def locked(db: Path) -> Iterator[int]:
    """The database held by another process until the block ends; its pid."""
    with subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "held\n"
            yield proc.pid
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)


def timed(config: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    res = smsgw(config, *args)
    took = time.monotonic() - began
    print(f"smsgw {' '.join(args)}: exit {res.returncode} in {took:.1f} s (bound {BOUND_SECONDS:g} s)")
    return res, took


def test_json_says_not_running_and_who_holds_the_database(tmp_path: Path) -> None:
    config = state(tmp_path)
    cfg = load_config(config)
    with locked(cfg.db_path) as holder:
        res, took = timed(config, "status", "--json")
    assert res.stdout.strip(), f"no JSON on stdout; stderr: {res.stderr}"
    shown = json.loads(res.stdout)
    assert res.returncode == 3, res.stdout + res.stderr  # README: 3, not running
    assert shown["daemon"]["state"] == "not running", shown
    assert shown["database"] == str(cfg.db_path), shown
    assert "locked by another process" in shown["error"] and f"pid {holder}" in shown["error"], shown
    assert f"pid {holder}" in res.stderr, res.stderr
    assert took < BOUND_SECONDS, took


def test_text_says_not_running_and_who_holds_the_database(tmp_path: Path) -> None:
    config = state(tmp_path)
    cfg = load_config(config)
    with locked(cfg.db_path) as holder:
        res, took = timed(config, "status")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "daemon    not running" in res.stdout, res.stdout + res.stderr
    assert "locked by another process" in res.stderr and f"pid {holder}" in res.stderr, res.stderr
    assert "end the sqlite3 shell" in res.stderr, res.stderr
    assert took < BOUND_SECONDS, took


def test_a_running_daemon_whose_database_is_held_is_in_trouble(tmp_path: Path) -> None:
    # Its lock on the state directory held and its status file fresh, as a daemon's: running, and
    # with its database held by another process, in trouble (1), not "not running".
    config = state(tmp_path)
    cfg = load_config(config)
    with process(sys.executable, "-c", HOLDER, str(cfg.state_dir / LOCK_FILE)) as daemon:
        assert daemon.stdout is not None and daemon.stdout.readline() == "held\n"
        fresh_status(cfg.state_dir, daemon.pid)
        with locked(cfg.db_path) as holder:
            res, took = timed(config, "status", "--json")
    assert res.stdout.strip(), f"no JSON on stdout; stderr: {res.stderr}"
    shown = json.loads(res.stdout)
    assert res.returncode == 1, res.stdout + res.stderr
    assert shown["daemon"]["state"] == "running", shown
    assert f"pid {holder}" in shown["error"] and f"pid {daemon.pid}" not in shown["error"], shown
    assert took < BOUND_SECONDS, took


def test_a_config_status_cannot_read_still_gives_json_an_object(tmp_path: Path) -> None:
    # A misspelt key, or no config at all: exit 3 with stdout empty, a check parsing it found nothing.
    # The exit is 4, "unknown" (3 said "not running"), as the object's state.
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway]\nbogus_key = 1\n")
    for config, words in ((bad, "bogus_key"), (tmp_path / "missing.toml", "missing.toml")):
        res = smsgw(config, "status", "--json")
        assert res.returncode == 4, res.stderr
        unread = json.loads(res.stdout)
        assert words in unread["error"] and unread["daemon"] == {"state": "unknown"}, unread
        assert unread["database"] is None
