"""Backups checked whole, and `smsgw restore`: a backup put in place of the database, never under a
running daemon.

The README's restore was "stop the daemon, delete smsgw.db-wal and smsgw.db-shm, copy the backup over
smsgw.db". Done with the daemon still running, it left a database whose indexes disagreed with its
tables: mail failed with IntegrityError, and `backup` still called its copy "checked" (its
`quick_check` does not compare indexes with tables).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from gateway.config import load_config
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, send_blocking
from tests.test_account_show import CLI
from tests.test_process import smsgw, start_daemon, write_config


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775) + '\n[premium]\nnumbers = ["7355"]\n')
    (tmp_path / "state").mkdir()  # `account add` makes a database only in a state directory that exists
    return CLI(path, capsys)


def corrupt_an_index(cli: CLI, db: Path) -> None:
    """An index that disagrees with its table, as a backup copied over a live database leaves it:
    `PRAGMA quick_check` says ok, `PRAGMA integrity_check` does not."""
    with closing(sqlite3.connect(db)) as c:
        row = c.execute(
            "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master"
            " WHERE name = 'premium_services_password'"
        ).fetchone()
        c.execute("PRAGMA writable_schema = ON")
        c.execute("DELETE FROM sqlite_master WHERE name = 'premium_services_password'")
        c.commit()
    cli.ok("premium", "add", "KP123", "--account", "ACME", "--email", "k@example.org")  # not in the index
    with closing(sqlite3.connect(db)) as c:
        c.execute("PRAGMA writable_schema = ON")
        c.execute("INSERT INTO sqlite_master VALUES (?, ?, ?, ?, ?)", row)
        c.commit()
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert c.execute("PRAGMA integrity_check").fetchone()[0] != "ok"


def test_backup_refuses_a_copy_whose_indexes_disagree_with_its_tables(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    corrupt_an_index(cli, tmp_path / "state" / "smsgw.db")
    (tmp_path / "b").mkdir()
    code, out, err = cli("backup", str(tmp_path / "b" / "copy.db"))
    assert code == 1, out  # it said "backup written" of a damaged database
    assert "failed its integrity check (" in err and "premium_services_password" in err, err
    assert "smsgw restore" in err
    assert list((tmp_path / "b").iterdir()) == []  # no copy, no temporary file left behind


# ---- smsgw restore ------------------------------------------------------------------------------


def messages(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as c:
        return [r[0] for r in c.execute("SELECT text FROM messages ORDER BY id")]


async def test_restore_is_refused_while_the_daemon_runs_and_installs_the_backup_once_it_is_stopped(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)  # no SMSC: the SMS stay queued
    state = tmp_path / "state"
    db = state / "smsgw.db"

    async def send(text: str) -> None:
        to = f"601123456@{DOMAIN}"
        assert (await asyncio.to_thread(send_blocking, smtp_port, mail(to, text), [to])).error is None

    proc = await start_daemon(config, smtp_port)
    try:
        await send("Before the backup")
        backup = tmp_path / "backup.db"
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        await send("After the backup")
        res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
        assert res.returncode == 1, res.stdout
        assert f"smsgw is running (pid {proc.pid})" in res.stderr, res.stderr
        assert "stop it first" in res.stderr
        assert not list(state.glob("smsgw.db.before-restore-*"))  # nothing touched
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: the latest commits may lie in the WAL alone
        await asyncio.to_thread(proc.wait, 30)
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert f"restored {backup} to {db} (schema version " in res.stdout
    (aside,) = state.glob("smsgw.db.before-restore-*[0-9Z]")
    assert f"kept as {aside}" in res.stdout
    # The mail accepted after the backup, its SMS still queued, is carried from the replaced database.
    assert messages(db) == ["Before the backup", "After the backup"]
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert not {"smsgw.db-wal", "smsgw.db-shm"} & {p.name for p in state.iterdir()}
    assert not list(state.glob(".*tmp"))
    # The database it replaced is whole, its WAL with it: restoring the wrong file loses nothing.
    assert messages(aside) == ["Before the backup", "After the backup"]
    proc = await start_daemon(config, smtp_port)
    try:
        await send("After the restore")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    assert messages(db) == ["Before the backup", "After the backup", "After the restore"]
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def files(state: Path) -> set[str]:
    """What lies in the state directory, less what SQLite makes and removes by itself (and the WAL's
    flag, which goes with the WAL when an earlier command's connection is collected)."""
    return {p.name for p in state.iterdir() if not p.name.endswith(("-wal", "-shm", ".wal-in-use"))}


def test_restore_refuses_a_damaged_backup_and_changes_nothing(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    corrupt_an_index(cli, db)
    with closing(sqlite3.connect(db)) as live, closing(sqlite3.connect(backup)) as copy:
        live.backup(copy)  # page by page: the damage with it
    before = files(db.parent) | {"smsgw.pid"}  # the lock it held
    code, out, err = cli("restore", str(backup))
    assert code == 1, out
    assert f"backup {backup} failed its integrity check (" in err and "nothing was changed" in err, err
    assert files(db.parent) == before
    code, _out, err = cli("restore", str(cli.path))  # not a database at all
    assert code == 1 and "cannot be read (file is not a database)" in err, err
    assert files(db.parent) == before


def test_a_database_deleted_is_restored_and_its_marker_lets_it_start(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    for path in db.parent.glob("smsgw.db*"):
        if path.name != "smsgw.db.id":
            path.unlink()  # deleted; the marker says one existed: every command refuses
    code, _out, err = cli("account", "list")
    assert code == 3 and "smsgw restore" in err, err
    out = cli.ok("restore", str(backup))
    assert not any("kept as" in line for line in out)  # there was nothing to keep
    assert any("ACME" in line for line in cli.ok("account", "list"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_restore_keeps_the_owner_of_the_database_it_replaces(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    os.chown(db, 65534, 65534)  # the service's user; the state directory is root's here
    cli.ok("restore", str(backup))
    assert (db.stat().st_uid, db.stat().st_gid) == (65534, 65534)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for path in (db.parent, *db.parent.iterdir()):
        os.chown(path, 65534, 65534)
    code, _out, err = cli("restore", str(backup))  # root in the service's directory: refused
    assert code == 2 and "sudo -u nobody" in err, err  # a command given wrong, as for every command


def test_a_wal_left_without_its_database_is_set_aside_not_replayed_into_the_backup(tmp_path: Path) -> None:
    # A restore cut off between its renames, or a damaged smsgw.db moved away by hand, leaves the
    # daemon's WAL behind: installed beside it, the backup took that WAL's frames of another file
    # at its first open (31 messages in a backup of 1, or "malformed").
    from gateway.cli.restore import _restore

    db, backup = tmp_path / "smsgw.db", tmp_path / "backup.db"
    with closing(sqlite3.connect(backup)) as c:
        c.executescript(
            "CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version VALUES (1);"
            " CREATE TABLE messages (id INTEGER PRIMARY KEY); CREATE TABLE t (x);"
        )
    shutil.copy(backup, db)
    live = sqlite3.connect(db)
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("PRAGMA wal_autocheckpoint=0")
    for _ in range(200):
        live.execute("INSERT INTO t VALUES (?)", ("x" * 200,))
    live.commit()
    wal = Path(f"{db}-wal").read_bytes()  # what a killed daemon leaves: its commits in the WAL
    live.close()
    os.rename(db, tmp_path / "moved-away.db")
    Path(f"{db}-wal").write_bytes(wal)
    _restore(backup, db)
    assert not Path(f"{db}-wal").exists()
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    assert any(p.name.endswith("-wal") and ".before-restore-" in p.name for p in tmp_path.iterdir())


def exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def left_by_killed_restore(state: Path, pid: int) -> list[Path]:
    """The copy and its journal that a restore killed midway (kill -9) leaves in the state directory."""
    left = [state / f".smsgw.db.restore-{pid}.tmp", state / f".smsgw.db.restore-{pid}.tmp-journal"]
    for path in left:
        path.write_bytes(b"\0" * 4096)
    return left


def test_the_copy_a_killed_restore_left_is_removed_by_the_next_restore(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    state = tmp_path / "state"
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    dead = exited_pid()
    left = left_by_killed_restore(state, dead)
    with subprocess.Popen(
        ["cat"], stdin=subprocess.PIPE
    ) as running:  # a restore still at work keeps its copy
        assert running.stdin is not None
        try:
            (kept := state / f".smsgw.db.restore-{running.pid}.tmp").write_bytes(b"\0")
            code, _out, err = cli("restore", str(backup))
        finally:
            running.stdin.close()
    assert code == 0, err
    assert not any(path.exists() for path in left), files(state)
    assert (
        f"smsgw: removed {left[0]} (0.0 MB), left unfinished by a restore (pid {dead}) no longer running"
        in err
    )
    assert kept.exists()


async def test_the_copy_a_killed_restore_left_is_removed_at_the_daemons_start(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    (state := tmp_path / "state").mkdir()
    left = left_by_killed_restore(state, exited_pid())
    async with running_gateway(load_config(config)):
        assert not any(path.exists() for path in left), files(state)
