"""A long start (the integrity check of a large database, then the upgrade's migrations) is seen
while it runs and is neither killed by systemd nor misexplained to the admin.

On a 1.8 GB database `smsgw status` said the upgrading daemon was "an older smsgw: restart it"
(restarting began the check again), the log held nothing until the start was over (a kill -9
16 s in left no line of the migrations already committed), and systemd's start allowance was one
estimate that a slow disk outlasted. Here another process's write lock on the database stands for
the long start: the daemon must migrate and waits for it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import free_port
from tests.test_process import CLI, ROOT, smsgw, write_config
from tests.test_store import undo_migration_27

OLD_SCHEMA = 26


def old_database(config: Path) -> Path:
    """The config's database at schema 26, as an install that upgrades finds it."""
    path = config.parent / "state" / "smsgw.db"
    path.parent.mkdir(exist_ok=True)
    Store.open(path).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        undo_migration_27(conn)  # and those after it
        conn.execute(f"UPDATE schema_version SET version = {OLD_SCHEMA}")
    return path


def version(path: Path) -> int:
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])


def write_lock(path: Path) -> sqlite3.Connection:
    """The database's write lock, held as an sqlite3 shell or a backup would hold it (until COMMIT)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def release(lock: sqlite3.Connection) -> None:
    lock.execute("COMMIT")
    lock.close()


@contextmanager
def notify_socket(path: Path) -> Iterator[Callable[[], list[str]]]:
    """What systemd would receive on $NOTIFY_SOCKET: a function returning every message so far."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    received: list[str] = []

    def messages() -> list[str]:
        while True:
            try:
                received.append(sock.recv(4096).decode())
            except BlockingIOError:
                return received

    try:
        yield messages
    finally:
        sock.close()


@contextmanager
def daemon(config: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = config.parent / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "run", "--json-logs"], cwd=ROOT, stdout=out, stderr=out, env=env
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def events(config: Path) -> list[dict[str, object]]:
    found = []
    for line in (config.parent / "daemon.log").read_text().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)


def waiting_said(config: Path) -> None:
    """Until the daemon says it waits for the lock (or a pause for one that says nothing)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(e["event"] == "store.lock_wait" for e in events(config)):
        time.sleep(0.02)


def test_a_start_waiting_to_upgrade_is_reported_starting_logged_and_extended(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    path = old_database(config)
    notify = tmp_path / "notify"
    # Half of WatchdogSec is how often the start asks for more time: 0.2 s here, 2 s without one.
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"}
    lock = write_lock(path)
    with notify_socket(notify) as received, daemon(config, env) as proc:
        try:
            waiting_said(config)
            assert proc.poll() is None and "READY=1" not in received()
            for args in (("status",), ("queue", "list")):
                res = smsgw(config, *args)
                out = res.stdout + res.stderr
                assert res.returncode == 1, out
                assert "older smsgw" not in out and "restart it" not in out, out
                assert f"pid {proc.pid}" in out and "starting" in out, out
                assert f"upgrading the database from schema {OLD_SCHEMA} to {SCHEMA_VERSION}" in out, out
            assert version(path) == OLD_SCHEMA  # no command ran the upgrade under the starting daemon
            # The log holds the start's lines before the daemon is ready.
            said = {str(e["event"]): e for e in events(config)}
            assert said["store.checking"]["path"] == str(path), said
            assert said["store.checking"]["bytes"] == path.stat().st_size, said
            assert said["store.lock_wait"]["migration"] == OLD_SCHEMA + 1, said
            until(
                lambda: sum(m.startswith("EXTEND_TIMEOUT_USEC=") for m in received()) >= 2,
                "EXTEND_TIMEOUT_USEC more than once",
            )
            statuses = [m for m in received() if m.startswith("STATUS=")]
            assert statuses[0].startswith("STATUS=checking the database ("), statuses
            assert f"STATUS=upgrading the database: schema {OLD_SCHEMA + 1} of {SCHEMA_VERSION}" in statuses
        finally:
            release(lock)
        until(lambda: "READY=1" in received(), "READY=1 once the lock is released")
    # (the lock released and the daemon stopped: the start went on to the end meanwhile)
    assert version(path) == SCHEMA_VERSION
    migrated = [e["version"] for e in events(config) if e["event"] == "store.migrated"]
    assert migrated == list(range(OLD_SCHEMA + 1, SCHEMA_VERSION + 1)), migrated
    assert not (tmp_path / "state" / "starting.json").exists()


def test_a_kill_during_the_upgrade_leaves_the_line_of_every_migration_committed(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    with daemon(config, dict(os.environ)) as proc:
        lock = write_lock(path)  # the daemon waits for it at its first migration
        log = config.parent / "daemon.log"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e["event"] == "store.lock_wait" for e in events(config)
        ):
            time.sleep(0.02)  # (an older daemon says nothing: then the pause alone)
        release(lock)
        # Watched closely: once the second migration is committed the first one's line must be in
        # the log, long before the start ends (the migrations of a small database take milliseconds).
        with closing(sqlite3.connect(path, timeout=5)) as watch:
            while watch.execute("SELECT version FROM schema_version").fetchone()[0] < OLD_SCHEMA + 2:
                assert proc.poll() is None, log.read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    committed = version(path)
    migrated = [e["version"] for e in events(config) if e["event"] == "store.migrated"]
    assert list(range(OLD_SCHEMA + 1, committed)) == migrated[: committed - OLD_SCHEMA - 1], (
        committed,
        migrated,
    )


def test_a_new_database_waits_out_a_held_write_lock_at_the_start(tmp_path: Path) -> None:
    # The first start on a new database: its first write (the schema's version table) waited only
    # the start's short busy timeout, once (2 s without systemd's watchdog), and the start failed
    # with "database is locked" while a backup or a shell held the lock a moment longer.
    from gateway.startprogress import StartProgress

    path = tmp_path / "state" / "smsgw.db"
    path.parent.mkdir()
    holding = (
        "import sqlite3, sys, time\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA journal_mode=WAL')\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('held', flush=True)\n"
        "time.sleep(1.0)\n"
        "conn.execute('ROLLBACK')\n"
    )
    command = [sys.executable, "-c", holding, str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as other:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        Store.open(path, progress=StartProgress(path, path.parent, every=0.3)).close()
    assert other.returncode == 0
    assert version(path) == SCHEMA_VERSION


def test_a_start_file_left_by_a_killed_start_is_not_believed_over_a_serving_daemon(tmp_path: Path) -> None:
    # A start killed mid-check leaves its start file; an older smsgw then serving under the same pid
    # (in a container the daemon is always pid 1) had every command say "starting" for ever.
    config = write_config(tmp_path, free_port(), free_port())
    state = old_database(config).parent
    serving = (
        "import json, os, sys, time\nfrom pathlib import Path\nfrom gateway import statelock\n"
        f"state = Path({str(state)!r})\n"
        "with statelock.held(state):\n"
        "    now = {'pid': os.getpid(), 'updated_at': time.time()}\n"
        "    (state / 'status.json').write_text(json.dumps(now))\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", serving], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as older:
        assert older.stdout is not None and older.stdin is not None
        assert older.stdout.readline() == "held\n"
        left = {"pid": older.pid, "updated_at": time.time() - 86400, "phase": "checking", "bytes": 10**9}
        (state / "starting.json").write_text(json.dumps(left))
        said = smsgw(config, "outbox", "list")
        older.stdin.write("\n")
        older.stdin.close()
    assert said.returncode == 1, said
    assert "is an older smsgw: restart it" in said.stderr, said.stderr
    assert "starting" not in said.stderr, said.stderr
