"""A start that fails on a port another program holds (or on a link's config) says so, and only so.

A first start whose panel port was taken also logged the database as deleted while open ("restore
the last backup"): the gate's write of the served domains was still queued when the failed start
closed the store, and its WAL fsync, answered after the close, found no WAL at the path. Each case
runs `python -m gateway.cli run` on a fresh state directory, against a real listening socket.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE
from tests.conftest import config_text, free_port

ROOT = Path(__file__).resolve().parents[1]
# What only a database lost underneath the daemon may log.
FALSE_ALARMS = (
    *("store.file_replaced", "store.rescue_failed", "store.rescued", "store.wal_kept"),
    *("store.commit_failed", "smtp.former_domains_unkept"),
)


# A disk whose fsync takes a while (tmpfs answers at once): the WAL fsync of a write the start queued is
# still under way when a bind fails, as it is on a real disk. Only the group commit's WAL fsync waits.
SLOW_WAL_FSYNC = """
import os, time, types
import gateway.store.walsync as walsync
def _slow_fsync(fd):
    time.sleep(0.5)
    os.fsync(fd)
walsync.os = types.SimpleNamespace(fsync=_slow_fsync)
"""
# `smsgw run` probes its ports before it makes anything (`binderror.first_busy`); these cases are of a
# port taken after that probe, between it and the bind, once the store is open: the probe finds none.
RUN = (
    "import sys\nimport gateway.cli.binderror as _probe\n_probe.first_busy = lambda cfg: None\n"
    "from gateway.cli.main import main\nsys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def smsgw_run(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    command = [sys.executable, "-c", SLOW_WAL_FSYNC + RUN, "--config", str(config), "run"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def last_line(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr, res.stderr
    return res.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("setting", "named"),
    [("web", "[web] listen"), ("submission", "[smtp] submission_listen"), ("relay", "[smtp] listen")],
)
def test_a_first_start_on_a_taken_port_names_it_and_nothing_about_the_database(
    tmp_path: Path, held_port: int, setting: str, named: str
) -> None:
    text = config_text(tmp_path, smsc_port=free_port())
    if setting == "web":
        text += f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{held_port}"\n'
    elif setting == "submission":
        text = text.replace(
            'submission_listen = "127.0.0.1:0"',
            f'submission_listen = "127.0.0.1:{held_port}"',
        )
    else:
        text = text.replace('\nlisten = "127.0.0.1:0"', f'\nlisten = "127.0.0.1:{held_port}"', 1)
    res = smsgw_run(tmp_path, text)
    # Not a config error: the other program may let go of the port, and a restart then succeeds.
    assert res.returncode == EXIT_FAILURE, res.stderr
    line = last_line(res)
    assert "cannot listen" in line and named in line and str(held_port) in line, line
    said = res.stdout + res.stderr
    assert not [alarm for alarm in FALSE_ALARMS if alarm in said], said
    db = tmp_path / "state" / "smsgw.db"
    assert not list(db.parent.glob("*.rescued-*")) and not list(db.parent.glob("*.unrescued-*"))
    with sqlite3.connect(db) as conn:  # the file is whole, and the start's writes are in it
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT name FROM accounts").fetchall() == [("acme",)]


def test_a_links_config_error_stops_the_start_before_the_store_opens(tmp_path: Path) -> None:
    """Left open at the exit, the next start took the run for a crash and read the whole file."""
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        'password = "secret"', 'password_file = "no-smsc-password"', 1
    )
    res = smsgw_run(tmp_path, text)
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "password_file" in last_line(res)
    assert not (tmp_path / "state" / "smsgw.db").exists()


# Another process (a backup, an `smsgw` command) takes the database's write lock once the store is
# open and keeps it 25 s: the start's queued write cannot commit while its port is taken.
LOCKED_AFTER_OPEN = """
import subprocess, sys as _sys
import gateway.smtp.gate as _gate
_LOCKER = (
    "import sqlite3, sys, time\\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\\n"
    "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(25)\\n"
)
_post_init = _gate.Gate.__post_init__
def _locked(self):
    locker = subprocess.Popen(
        [_sys.executable, "-c", _LOCKER, str(self.store.path)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    locker.stdout.readline()
    _post_init(self)
_gate.Gate.__post_init__ = _locked
"""


def test_a_start_failing_on_a_taken_port_says_so_soon_while_the_database_is_locked(
    tmp_path: Path, held_port: int
) -> None:
    """The failed start's queued write waited out the store's patience (30 s) for the lock, silent and
    deaf to SIGTERM, before the port was named; it now gives up on it after a few seconds (the next
    start writes it again). The run's own time limit, below that patience, is what fails the old code."""
    text = config_text(tmp_path, smsc_port=free_port())
    text += f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{held_port}"\n'
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    command = [sys.executable, "-c", LOCKED_AFTER_OPEN + RUN, "--config", str(config), "run"]
    res = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=20)
    assert res.returncode == EXIT_FAILURE, res.stderr
    line = last_line(res)
    assert "cannot listen" in line and "[web] listen" in line and str(held_port) in line, line
