"""One process upgrades an old database, whole, and the others say so: two commands at once, a
command then a daemon, a daemon then a command, a daemon killed mid-upgrade then a command.

A daemon took its state directory's lock only a second or two after it was started (Python's
start, the imports, the config checks): a `smsgw status` run in that time saw no daemon and
upgraded the database, and the daemon then ran the migrations it had not reached yet, the two
records each holding half of the upgrade (on a database of a million messages `status` blocked
17-30 s and said it had upgraded it). Two commands at once split it the same way. Here another
process's write lock on the database makes each upgrade last as long as a test needs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import free_port
from tests.test_long_start import (
    OLD_SCHEMA,
    daemon,
    events,
    notify_socket,
    old_database,
    release,
    until,
    version,
    write_lock,
)
from tests.test_process import CLI, ROOT, signalled_at, smsgw, write_config

UPGRADED = f"from schema version {OLD_SCHEMA} to {SCHEMA_VERSION}"


@contextmanager
def command(config: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`smsgw ARGS` running in the background (its output: `finished`)."""
    proc = subprocess.Popen(
        [*CLI, "--config", str(config), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def finished(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=60)
    return out


def lock_file(config: Path) -> str:
    path = config.parent / "state" / "smsgw.pid"
    return path.read_text() if path.exists() else ""


def upgrading_in_lock_file(config: Path, pid: int) -> None:
    """Until the state directory's lock file says `pid` holds it to upgrade the database."""
    until(lambda: lock_file(config).startswith(f"{pid}\nupgrading smsgw "), f"pid {pid} upgrading", 15)


def migrated(config: Path) -> list[object]:
    return [e["version"] for e in events(config) if e["event"] == "store.migrated"]


def test_two_commands_at_once_one_upgrades_the_other_says_who_does(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    lock = write_lock(path)  # the first command's upgrade waits for it: as long as a large one takes
    try:
        with command(config, "account", "list") as first:
            upgrading_in_lock_file(config, first.pid)
            started = time.monotonic()
            second = smsgw(config, "queue", "list")
            out = second.stdout + second.stderr
            assert second.returncode == 1, out
            assert f"pid {first.pid} (smsgw account list) is upgrading the database {path}" in out, out
            assert "try again when it is done" in out and "upgraded" not in out, out
            assert time.monotonic() - started < 10  # refused at once, not after the upgrade
            assert version(path) == OLD_SCHEMA
            release(lock)
            said = finished(first)
    finally:
        with suppress(sqlite3.ProgrammingError):  # released above
            release(lock)
    assert f"upgraded the database {path} {UPGRADED}" in said, said
    assert version(path) == SCHEMA_VERSION
    assert "upgrading" not in lock_file(config)  # no command named after its upgrade
    after = smsgw(config, "queue", "list")
    assert after.returncode == 0 and "upgraded" not in after.stderr, after.stderr


def test_a_daemon_started_during_a_commands_upgrade_waits_for_it_then_runs_none(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    notify = tmp_path / "notify"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"}
    lock = write_lock(path)
    try:
        with notify_socket(notify) as received, command(config, "account", "list") as first:
            upgrading_in_lock_file(config, first.pid)
            with daemon(config, env) as proc:
                until(lambda: any(e["event"] == "store.upgrade_wait" for e in events(config)), "a wait said")
                waits = [e for e in events(config) if e["event"] == "store.upgrade_wait"]
                assert waits[0]["pid"] == first.pid and waits[0]["command"] == "smsgw account list", waits
                assert proc.poll() is None  # not refused as "already running": systemd would retry it
                until(
                    lambda: sum(m.startswith("EXTEND_TIMEOUT_USEC=") for m in received()) >= 2,
                    "the start extended while it waits",
                )
                assert (
                    f"STATUS=waiting for pid {first.pid} (smsgw account list) to finish upgrading"
                    " the database" in (received())
                )
                release(lock)
                said = finished(first)
                until(lambda: "READY=1" in received(), "READY=1 once the command's upgrade is over")
                assert proc.poll() is None
    finally:
        with suppress(sqlite3.ProgrammingError):  # released above
            release(lock)
    assert f"upgraded the database {path} {UPGRADED}" in said, said
    assert version(path) == SCHEMA_VERSION
    assert migrated(config) == []  # the command did it all; the log says who did
    by = [e for e in events(config) if e["event"] == "store.upgraded_by"]
    assert len(by) == 1 and by[0]["pid"] == first.pid, by


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_a_command_in_a_starting_daemons_first_moments_leaves_the_upgrade_to_it(tmp_path: Path) -> None:
    # The README's promise: a command run while the new daemon starts exits 1 and leaves the
    # upgrade to it. Here the daemon is stopped as it starts importing itself (a second and more
    # after its start on a small machine), the moment a command run 0.2 s after it came in.
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    log = config.parent / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*signalled_at("gateway.daemon", "SIGSTOP"), "--config", str(config), "run", "--json-logs"],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        until(lambda: stopped(proc.pid), "the daemon stopped at its imports")
        res = smsgw(config, "queue", "list")
        out_text = res.stdout + res.stderr
        assert res.returncode == 1, out_text
        assert f"the daemon (pid {proc.pid}" in out_text and "is starting" in out_text, out_text
        assert "upgraded" not in out_text, out_text
        assert version(path) == OLD_SCHEMA
        proc.send_signal(signal.SIGCONT)
        until(lambda: any(e["event"] == "daemon.ready" for e in events(config)), "the daemon ready", 60)
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert version(path) == SCHEMA_VERSION
    assert migrated(config) == list(range(OLD_SCHEMA + 1, SCHEMA_VERSION + 1))  # the whole upgrade


def test_a_command_0_2_s_after_a_daemon_either_way_one_did_the_whole_upgrade(tmp_path: Path) -> None:
    # As monitoring may happen to: the command comes before the daemon holds its lock, or after.
    # Before, the command upgrades and the daemon waits for it; after, the command leaves it to the
    # daemon. Never half each.
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    lock = write_lock(path)  # whichever upgrades waits for it: the other comes meanwhile
    try:
        with daemon(config, dict(os.environ)) as proc:
            time.sleep(0.2)
            with command(config, "queue", "list") as other:
                until(
                    lambda: other.poll() is not None or "upgrading smsgw" in lock_file(config),
                    "the command refused or upgrading",
                )
                release(lock)
                said = finished(other)
                until(lambda: any(e["event"] == "daemon.ready" for e in events(config)), "ready", 60)
                assert proc.poll() is None
    finally:
        with suppress(sqlite3.ProgrammingError):  # released above
            release(lock)
    assert version(path) == SCHEMA_VERSION
    by = [e["pid"] for e in events(config) if e["event"] == "store.upgraded_by"]
    if other.returncode == 1:  # the daemon's upgrade
        assert f"the daemon (pid {proc.pid}" in said and "upgraded" not in said, said
        assert migrated(config) == list(range(OLD_SCHEMA + 1, SCHEMA_VERSION + 1)) and by == []
    else:  # the command's
        assert f"upgraded the database {path} {UPGRADED}" in said, said
        assert migrated(config) == [] and by == [other.pid]


def test_a_command_after_a_daemon_killed_mid_upgrade_finishes_it_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    lock = write_lock(path)
    with daemon(config, dict(os.environ)) as proc:
        until(lambda: any(e["event"] == "store.lock_wait" for e in events(config)), "the daemon waits")
        release(lock)
        with closing(sqlite3.connect(path, timeout=5)) as watch:
            while watch.execute("SELECT version FROM schema_version").fetchone()[0] < OLD_SCHEMA + 2:
                assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    left = version(path)
    assert (config.parent / "state" / "starting.json").exists()  # what the killed start left
    assert migrated(config) == list(range(OLD_SCHEMA + 1, left + 1))[: len(migrated(config))]
    res = smsgw(config, "queue", "list")
    assert res.returncode == 0, res.stderr
    assert f"upgraded the database {path} from schema version {left} to {SCHEMA_VERSION}" in res.stderr
    assert version(path) == SCHEMA_VERSION
