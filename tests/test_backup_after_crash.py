"""`smsgw backup` and `check-config` after a crash, and what backup and restore say when they cannot write.

After a kill -9 and a WAL cut short at a commit frame, with the -shm of that run kept, `smsgw run`
and `status` refuse (exit 3); `backup` and `check-config` opened the database read-only without
that check, and SQLite's recovery rewrote the -shm to match the cut WAL: the next start found
nothing wrong, checkpointed what was left, and sent SMS already delivered again. A backup into a
directory it may not write ended in a traceback, one onto a full disk blamed the live database,
and a restore into a full state directory blamed the backup.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import sqlite3
import struct
import subprocess
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.store import walcheck, walfile
from gateway.store.db import Store
from tests.test_process import CLI, ROOT, smsgw, write_config
from tests.test_wal_damage import ACCEPTED, crashed_state, refused, starts_with, texts


def cut_at_a_commit_frame(wal: Path) -> int:
    """Truncate `wal` just after a commit frame about half way, before its last commit: committed
    frames after it are gone, and the file ends on a frame boundary (nothing damaged to see)."""
    data = wal.read_bytes()
    page = struct.unpack(">I", data[8:12])[0]
    size = walfile.FRAME_HEADER + page
    salts = data[16:24]
    n = 0
    while (
        walfile.WAL_HEADER + (n + 1) * size <= len(data)
        and data[walfile.WAL_HEADER + n * size + 8 : walfile.WAL_HEADER + n * size + 16] == salts
    ):
        n += 1
    commits = [
        i + 1
        for i in range(n)
        if struct.unpack(">I", data[walfile.WAL_HEADER + i * size + 4 : walfile.WAL_HEADER + i * size + 8])[0]
    ]
    assert len(commits) >= 2, commits
    cut = next(c for c in commits if c >= n // 2 and c != commits[-1]) if commits[-1] > n // 2 else commits[0]
    os.truncate(wal, walfile.WAL_HEADER + cut * size)
    return cut


async def test_backup_and_check_config_refuse_a_wal_cut_at_a_commit_frame_and_the_start_still_refuses(
    tmp_path: Path,
) -> None:
    config, _smtp_port, smsc_port = await crashed_state(tmp_path)  # a real daemon killed with SIGKILL
    state = tmp_path / "state"
    cut_at_a_commit_frame(state / "smsgw.db-wal")
    shm = (state / "smsgw.db-shm").read_bytes()
    (tmp_path / "backups").mkdir()
    backup = smsgw(config, "backup", str(tmp_path / "backups" / "b.db"))
    assert backup.returncode == 3, backup.stdout + backup.stderr
    assert "cut short" in backup.stderr and "smsgw accept-wal-loss" in backup.stderr, backup.stderr
    assert "backup written" not in backup.stdout
    assert not list((tmp_path / "backups").iterdir())
    checked = smsgw(config, "check-config")
    assert checked.returncode == 3, checked.stdout + checked.stderr
    assert "cut short" in checked.stderr, checked.stderr
    assert (state / "smsgw.db-shm").read_bytes() == shm  # the evidence is as the crash left it
    refused(config, smsc_port, words="cut short")  # and the start still refuses


async def test_after_a_crash_with_the_wal_whole_backup_holds_every_mail_and_check_config_passes(
    tmp_path: Path,
) -> None:
    config, smtp_port, _ = await crashed_state(tmp_path)
    state = tmp_path / "state"
    checked = smsgw(config, "check-config")
    assert checked.returncode == 0, checked.stderr  # a WAL found whole is read as any
    assert "the database was not read" not in checked.stderr, checked.stderr
    backup = smsgw(config, "backup", str(tmp_path / "b.db"))
    assert backup.returncode == 0, backup.stderr
    assert [t for t in texts(tmp_path / "b.db") if t in ACCEPTED] == ACCEPTED
    assert walcheck.flag_path(state / "smsgw.db").exists()  # the WAL is left to the start
    await starts_with(config, smtp_port, ACCEPTED)


def state_with_a_database(tmp_path: Path, mails: int = 0) -> tuple[Path, Path]:
    """A config and its stopped daemon's database (real SQLite, the real schema), with `mails`
    rows of text of some size in it, so that a copy is larger than a file-size limit."""
    config = write_config(tmp_path, 1, 1)
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    if mails:
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("CREATE TABLE filler (x BLOB)")
            conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(2000),) for _ in range(mails)])
            conn.commit()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return config, db


def smsgw_limited(
    config: Path, *args: str, fsize: int | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    """The CLI with files it writes limited to `fsize` bytes (RLIMIT_FSIZE): a write past it is cut
    short by the kernel, as on a full disk (SQLite: "database or disk is full")."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        preexec_fn=limit,  # only a setrlimit, before exec
        **kw,  # type: ignore[arg-type]
    )


def small_tmpfs(directory: Path, size: int, save: Path | None = None) -> list[str]:
    """The command prefix that runs a command with a tmpfs of `size` bytes on `directory`, in a
    mount namespace of its own (nothing to unmount after): a disk that really fills. `save`: the
    directory's files, copied into the tmpfs first. Skipped where mounting is not allowed."""
    probe = (
        subprocess.run(["unshare", "-m", "true"], capture_output=True) if shutil.which("unshare") else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("no mount namespace here (needs root): a full disk is made with RLIMIT_FSIZE instead")
    fill = f" && cp -a {save}/. {directory}/" if save is not None else ""
    script = f'mount -t tmpfs -o size={size} tmpfs {directory}{fill} && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh"]


@pytest.mark.parametrize("full", ["tmpfs", "rlimit"])
def test_a_backup_onto_a_full_disk_names_the_backup_not_the_live_database(tmp_path: Path, full: str) -> None:
    config, db = state_with_a_database(tmp_path, mails=400)
    size = db.stat().st_size
    assert size > 400_000
    backups = tmp_path / "backups"
    backups.mkdir()
    dest = backups / "b.db"
    if full == "tmpfs":
        prefix = small_tmpfs(backups, size // 2)
        res = subprocess.run(
            [*prefix, *CLI, "--config", str(config), "backup", str(dest)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert "database or disk is full" in res.stderr, res.stderr
    else:
        res = smsgw_limited(config, "backup", str(dest), fsize=size // 2 + 100)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert f"cannot write the backup {dest}" in res.stderr, res.stderr
    assert "free space" in res.stderr.lower() and "the database is untouched" in res.stderr
    assert f"database {db}:" not in res.stderr  # the live database is not at fault
    assert not list(backups.iterdir())  # no half copy left


@pytest.mark.parametrize("full", ["tmpfs", "rlimit"])
def test_a_restore_into_a_full_state_directory_does_not_blame_the_backup(tmp_path: Path, full: str) -> None:
    config, db = state_with_a_database(tmp_path, mails=400)
    backup = tmp_path / "b.db"
    assert smsgw(config, "backup", str(backup)).returncode == 0
    room = backup.stat().st_size // 2
    if full == "tmpfs":
        save = tmp_path / "saved-state"
        shutil.copytree(db.parent, save)
        prefix = small_tmpfs(db.parent, db.stat().st_size + room + 200_000, save=save)
        res = subprocess.run(
            [*prefix, *CLI, "--config", str(config), "restore", str(backup)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert "database or disk is full" in res.stderr and "Free space for about twice" in res.stderr
    else:
        res = smsgw_limited(config, "restore", str(backup), fsize=room + 100)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cannot be read" not in res.stderr, res.stderr
    assert f"cannot copy backup {backup} into the state directory {db.parent}" in res.stderr, res.stderr
    assert "twice the backup's size" in res.stderr and "the backup is not at fault" in res.stderr
    assert not list(db.parent.glob(".*restore*"))  # no copy left behind
    assert texts(db) == []  # the database in place is untouched


def without_dac_override() -> list[str]:
    """The command prefix that runs the CLI without root's power to write anywhere: root (as the
    tests may run) writes into a directory of mode 0555 anyway."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: a directory root cannot write cannot be made here")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]


def test_a_backup_into_a_directory_it_cannot_write_says_so_without_a_traceback(tmp_path: Path) -> None:
    config, _db = state_with_a_database(tmp_path)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o555)
    try:
        for given in (f"{closed}/", str(closed / "b.db")):
            res = subprocess.run(
                [*without_dac_override(), *CLI, "--config", str(config), "backup", given],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=60,
            )
            assert res.returncode == 1, res.stdout + res.stderr
            assert "Traceback" not in res.stderr, res.stderr
            assert f"cannot write the backup in {closed}" in res.stderr, res.stderr
            assert "Permission denied" in res.stderr
            assert f"-m 700 {closed}" in res.stderr  # the command that makes one the service's user writes
    finally:
        closed.chmod(0o755)


def test_a_dated_backup_is_named_by_the_time_in_utc(tmp_path: Path) -> None:
    config, _db = state_with_a_database(tmp_path)
    (tmp_path / "backups").mkdir()
    env = {**os.environ, "TZ": "Pacific/Kiritimati"}  # UTC+14: local time is another day
    before = time.time()
    res = smsgw_limited(config, "backup", f"{tmp_path / 'backups'}/", env=env)
    after = time.time()
    assert res.returncode == 0, res.stderr
    (name,) = [p.name for p in (tmp_path / "backups").iterdir()]
    stamp = re.fullmatch(r"smsgw-([0-9]{8}-[0-9]{6})\.db", name)
    assert stamp is not None, name
    when = datetime.strptime(stamp.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp()
    assert before - 1 <= when <= after + 1, (name, datetime.fromtimestamp(before, UTC))


def test_check_config_beside_a_running_process_reads_the_database(tmp_path: Path) -> None:
    """A WAL in use (a daemon's) is no crash's leftover: check-config reads on as before."""
    config, db = state_with_a_database(tmp_path)
    store = Store.open(db)
    try:
        with store.db.transaction() as conn:
            # A sender stored under an older rule: check-config warns of it once it reads the database.
            conn.execute("INSERT INTO accounts (name, sender, created_at) VALUES ('acme', '€uro', 0)")
        assert walcheck.flag_path(db).exists()
        res = smsgw(config, "check-config")
        assert res.returncode == 0, res.stderr
        assert "not read" not in res.stderr and "account acme:" in res.stderr, res.stderr
    finally:
        store.close()
