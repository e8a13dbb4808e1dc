"""`smsgw backup` into a directory other users may write in: what they put there is never written.

The copy was written as `.NAME.PID.tmp` beside the backup, opened with O_CREAT|O_TRUNC and then by
name by SQLite: the pid is the next one, so a user who may write in the backup directory put a link
there (the backup truncated and overwrote the file it led to, or wrote the database into a 0666 file
of theirs) or a 0666 file of their own (the finished backup was theirs, readable by every user).

Each backup runs as a process (`sh` plants at the names of its own pid, then execs the CLI, which
keeps that pid) against a real database; run as root, what is planted belongs to user nobody.
"""

from __future__ import annotations

import os
import pwd
import resource
import sqlite3
import stat
import subprocess
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.test_backup_after_crash import state_with_a_database
from tests.test_process import CLI, ROOT

ROOT_RUN = os.geteuid() == 0
NOBODY = pwd.getpwnam("nobody").pw_uid if ROOT_RUN else os.geteuid()
VICTIM = b"precious contents of another file\n"


def backup_planting(
    config: Path, directory: Path, plant: str, *args: str, fsize: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`smsgw backup ARGS` with `plant` (sh, `$D` the directory, `$P` the pid the backup will run
    as) run first in the very process that then becomes the backup."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    script = f'D="$1"; P=$$; shift; {plant} || exit 99; exec "$@"'
    return subprocess.run(
        ["sh", "-c", script, "sh", str(directory), *CLI, "--config", str(config), "backup", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        preexec_fn=limit,  # only a setrlimit, before exec
    )


def theirs(path: str) -> str:
    """sh that gives `path` (a link itself, not what it leads to) to user nobody, as if they made it."""
    return f' && chown -h {NOBODY}:{NOBODY} "{path}"' if ROOT_RUN else ""


def public_dir(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A directory every user may write in, sticky as /tmp; a file of ours outside it, and a 0666
    file of user nobody's outside it."""
    pub = tmp_path / "pub"
    pub.mkdir()
    pub.chmod(0o1777)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    mine = tmp_path / "mine"
    mine.touch()
    mine.chmod(0o666)
    os.chown(mine, NOBODY, NOBODY)
    return pub, victim, mine


def assert_a_good_private_backup(path: Path) -> None:
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid(), st
    assert stat.S_IMODE(st.st_mode) == 0o600
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)


PLANTS = {
    "link to a file of ours": 'ln -s "$V" "$T"' + theirs("$T"),
    "link to a 0666 file of theirs": 'ln -s "$M" "$T"' + theirs("$T"),
    "a 0666 file of theirs": 'install -m 666 /dev/null "$T"' + theirs("$T"),
    "link at its -journal": 'ln -s "$V" "$T-journal"' + theirs("$T-journal"),
}


@pytest.mark.parametrize("plant", PLANTS)
def test_what_another_user_put_at_the_temporary_name_is_neither_followed_nor_kept(
    tmp_path: Path, plant: str
) -> None:
    config, _db = state_with_a_database(tmp_path)
    pub, victim, mine = public_dir(tmp_path)
    where = f'V="{victim}"; M="{mine}"; T="$D/.b.db.$P.tmp"; '
    res = backup_planting(config, pub, where + PLANTS[plant], str(pub / "b.db"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "backup written" in res.stdout
    assert victim.read_bytes() == VICTIM  # neither truncated nor overwritten
    assert mine.stat().st_size == 0 and mine.stat().st_uid == NOBODY
    assert_a_good_private_backup(pub / "b.db")
    (planted,) = [p for p in pub.iterdir() if p.name != "b.db"]  # our temporary directory is gone
    st = os.lstat(planted)
    assert st.st_uid == NOBODY and st.st_size in (0, len(str(victim)), len(str(mine)))  # untouched
    if not stat.S_ISLNK(st.st_mode):
        assert stat.S_IMODE(st.st_mode) == 0o666


def test_a_dated_backup_writes_through_nothing_planted_at_the_names_of_the_next_seconds(
    tmp_path: Path,
) -> None:
    # The nightly job's form: a directory, the backup named by the time. Planted for each second of
    # the next few, at the old temporary name and its -journal.
    config, _db = state_with_a_database(tmp_path)
    pub, victim, _mine = public_dir(tmp_path)
    now = datetime.now(UTC)
    names = " ".join(f"smsgw-{now + timedelta(seconds=s):%Y%m%d-%H%M%S}.db" for s in range(-1, 6))
    links = f'ln -s "{victim}" "$T"{theirs("$T")} && ln -s "{victim}" "$T-journal"{theirs("$T-journal")}'
    plant = f'for n in {names}; do T="$D/.$n.$P.tmp"; {links} || exit 99; done; true'
    res = backup_planting(config, pub, plant, f"{pub}/")
    assert res.returncode == 0, res.stdout + res.stderr
    assert victim.read_bytes() == VICTIM
    (written,) = [p for p in pub.iterdir() if not p.name.startswith(".")]
    assert_a_good_private_backup(written)
    assert len([p for p in pub.iterdir() if p.is_symlink()]) == 14  # each left as it was put
    assert len(list(pub.iterdir())) == 15


def test_a_backup_cut_short_removes_only_what_it_made(tmp_path: Path) -> None:
    # A full disk (RLIMIT_FSIZE): the copy goes, the planted link and file stay as they were.
    config, db = state_with_a_database(tmp_path, mails=400)
    pub, victim, _mine = public_dir(tmp_path)
    plant = (
        f'ln -s "{victim}" "$D/.b.db.$P.tmp"{theirs("$D/.b.db.$P.tmp")}'
        f' && install -m 666 /dev/null "$D/.b.db.$P.tmp-journal"{theirs("$D/.b.db.$P.tmp-journal")}'
    )
    res = backup_planting(config, pub, plant, str(pub / "b.db"), fsize=db.stat().st_size // 2)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"cannot write the backup {pub / 'b.db'}" in res.stderr and "Traceback" not in res.stderr
    assert victim.read_bytes() == VICTIM
    pid = next(p.name.split(".")[3] for p in pub.iterdir() if p.is_symlink())
    assert sorted(p.name for p in pub.iterdir()) == [f".b.db.{pid}.tmp", f".b.db.{pid}.tmp-journal"]
    left = pub / f".b.db.{pid}.tmp-journal"
    assert left.stat().st_size == 0 and left.stat().st_uid == NOBODY


def refused(config: Path, directory: Path) -> subprocess.CompletedProcess[str]:
    res = backup_planting(config, directory, "true", str(directory / "b.db"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert f"cannot write the backup in {directory}:" in res.stderr, res.stderr
    assert not list(directory.iterdir())  # nothing written, not even a temporary directory
    return res


def test_a_directory_where_others_may_rename_our_entries_is_refused(tmp_path: Path) -> None:
    # Writable by a group (or everyone) without the sticky bit: a member renames the directory the
    # copy is written in and puts their own, with a link in it, before SQLite opens the copy by name.
    config, _db = state_with_a_database(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2770)
    res = refused(config, shared)
    assert "is writable by its group (2770) without the sticky bit" in res.stderr
    assert "chmod +t" in res.stderr
    shared.chmod(0o3770)  # with it, others may rename only their own entries
    ok = backup_planting(config, shared, "true", str(shared / "b.db"))
    assert ok.returncode == 0, ok.stderr
    assert_a_good_private_backup(shared / "b.db")


@pytest.mark.skipif(not ROOT_RUN, reason="a directory of another user is made with chown, as root")
def test_a_directory_of_another_user_or_under_one_is_refused(tmp_path: Path) -> None:
    # Its owner may rename anything in it, whatever its mode: run as root, the backup would write
    # wherever that user's links lead.
    config, _db = state_with_a_database(tmp_path)
    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    os.chown(other, NOBODY, NOBODY)
    res = refused(config, other)
    assert f"{other} belongs to user nobody" in res.stderr
    inner = other / "ours"
    inner.mkdir(mode=0o700)  # ours, but nobody may rename it and put another in its place
    res = refused(config, inner)
    assert f"{other} belongs to user nobody" in res.stderr
