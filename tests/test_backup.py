"""`smsgw backup`: a consistent copy of the live database while a real daemon process writes to it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
from contextlib import closing
from pathlib import Path

from gateway.store.db import Store
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.test_process import CLI, ROOT, smsgw, start_daemon, write_config


async def test_a_backup_taken_while_the_daemon_runs_holds_every_mail_answered_250(tmp_path: Path) -> None:
    # The daemon keeps its latest commits in smsgw.db-wal: a cp of smsgw.db alone lost mail already
    # answered 250, and nothing documented another way.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)  # no SMSC: the SMS stay queued
    proc = await start_daemon(config, smtp_port)
    try:
        for i in range(3):
            to = f"60112300{i}@{DOMAIN}"
            assert (
                await asyncio.to_thread(send_blocking, smtp_port, mail(to, f"Kept {i}"), [to])
            ).error is None
        (tmp_path / "backups").mkdir()
        out = await asyncio.to_thread(smsgw, config, "backup", str(tmp_path / "backups"))
        assert out.returncode == 0, out.stderr
        assert "3 messages" in out.stdout
        (copy,) = (tmp_path / "backups").iterdir()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert [p.name for p in (tmp_path / "backups").iterdir()] == [copy.name]  # no -wal, no temp file
        with closing(sqlite3.connect(copy)) as db:
            texts = [r[0] for r in db.execute("SELECT text FROM messages ORDER BY id")]
        assert texts == ["Kept 0", "Kept 1", "Kept 2"]
        again = await asyncio.to_thread(smsgw, config, "backup", str(copy))
        assert again.returncode == 1 and "exists" in again.stderr
        missing = await asyncio.to_thread(smsgw, config, "backup", f"{tmp_path / 'nightly'}/")
        assert missing.returncode == 2 and "does not exist; create it first" in missing.stderr
        assert not (tmp_path / "nightly").exists()  # not written as a file (the next night: "exists")
        live = await asyncio.to_thread(smsgw, config, "backup", str(tmp_path / "state" / "smsgw.db"))
        assert live.returncode == 2 and "live database itself" in live.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_a_killed_backup_leaves_a_temporary_copy_the_next_backup_removes(tmp_path: Path) -> None:
    # A nightly backup killed by its job's timeout left `.NAME.PID.tmp` beside the backups, as large
    # as the database, and nothing removed it: night after night they filled the disk.
    config = write_config(tmp_path, free_port(), free_port())
    (tmp_path / "state").mkdir()
    Store.open(tmp_path / "state" / "smsgw.db").close()
    backups = tmp_path / "backups"
    backups.mkdir()
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as lock:
        lock.execute("PRAGMA locking_mode = EXCLUSIVE")
        lock.execute("BEGIN EXCLUSIVE")  # the copy waits for it: killed meanwhile, as by a timeout
        proc = subprocess.Popen([*CLI, "--config", str(config), "backup", str(backups)], cwd=ROOT)
        for _ in range(400):
            if left := [p for p in backups.iterdir() if p.name.endswith(".tmp")]:
                break
            await asyncio.sleep(0.025)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lock.rollback()
    assert [p.name for p in left] == [p.name for p in backups.iterdir()]
    (killed,) = left
    assert killed.name.endswith(f".{proc.pid}.tmp")
    # Not ours, or not to be removed: a backup still running (this process), another name, a symbolic
    # link, a directory; a dead backup's copy to a file of another name stays too (its own run
    # removes it).
    dead = dead_pid()
    kept = [
        backups / f".smsgw-20250101-020000.db.{os.getpid()}.tmp",
        backups / f".notes.txt.{dead}.tmp",
        backups / f".other.db.{dead}.tmp",
        backups / f".smsgw-20250101-020000.db.{dead}.tmp.old",
    ]
    for path in kept:
        path.write_bytes(b"x")
    (backups / f".smsgw-20250102-020000.db.{dead}.tmp").symlink_to(tmp_path / "state" / "smsgw.db")
    (backups / f".smsgw-20250103-020000.db.{dead}.tmp").mkdir()
    kept += [
        backups / f".smsgw-20250102-020000.db.{dead}.tmp",
        backups / f".smsgw-20250103-020000.db.{dead}.tmp",
    ]
    full = backups / f".smsgw-20250104-020000.db.{dead}.tmp"
    full.write_bytes(b"\0" * 3_000_000)

    out = await asyncio.to_thread(smsgw, config, "backup", str(backups))
    assert out.returncode == 0, out.stderr
    assert f"removed {killed} (0.0 MB), left unfinished by a backup (pid {proc.pid})" in out.stderr
    assert f"removed {full} (3.0 MB)" in out.stderr
    (written,) = [p for p in backups.iterdir() if not p.name.startswith(".")]
    assert sorted(backups.iterdir()) == sorted([written, *kept])
    assert (tmp_path / "state" / "smsgw.db").exists()  # the symbolic link's target is untouched

    # To a file: its own leftovers go, a dated one stays (another night's run removes it).
    mine = backups / f".nightly.db.{dead}.tmp"
    mine.write_bytes(b"x")
    out = await asyncio.to_thread(smsgw, config, "backup", str(backups / "nightly.db"))
    assert out.returncode == 0, out.stderr
    assert f"removed {mine}" in out.stderr and not mine.exists()
    assert all(p.exists() or p.is_symlink() for p in kept)
