"""`smsgw backup PATH`: a consistent copy of the live database, taken while the daemon runs.

The daemon keeps its latest commits in the WAL (`smsgw.db-wal`) until a checkpoint moves them into
`smsgw.db`, so copying `smsgw.db` alone loses mail that was already answered `250`. SQLite's online
backup reads the database and its WAL as one snapshot. It copies every page in one step: a copy
made step by step starts over whenever another connection writes, and the daemon always does. The
read blocks no write, but the WAL cannot be cut back behind it: the daemon's first TRUNCATE
checkpoint during the copy waits for it (2 s at most, writes held), then one is tried every few
seconds for 50 ms (`gateway.store.checkpoint`), and the WAL grows until the copy ends.

The copy is checked with `PRAGMA integrity_check`, not the start's quicker `quick_check`: only the
full check compares every index with its table, and an index that disagrees (a backup copied over
the file of a running daemon leaves such) fails inserts and finds rows no longer there. The copy is
ours alone, so the long read holds up nobody.
"""

from __future__ import annotations

import argparse
import errno
import grp
import os
import pwd
import re
import shlex
import sqlite3
import stat
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.request import pathname2url

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_USAGE,
    CliError,
    database_error,
    no_database,
    pid_alive,
    refuse_root_in_service_dir,
    use_database,
)
from gateway.cli.daemonfiles import daemon_file

if TYPE_CHECKING:
    from gateway.config import Config

_DATED = r"smsgw-[0-9]{8}-[0-9]{6}\.db"  # the name of a backup to a directory (`cmd_backup`)


def make_dir(cfg: Config, directory: Path) -> str:
    """The command that makes a backup directory the service's user (the state_dir's owner) writes:
    `mkdir -m 700` run as root, as the hint said, made one only root could write, and the nightly
    backup run as that user was refused there."""
    try:
        st = cfg.state_dir.stat()
        user, group = pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
    except (OSError, KeyError):  # no state_dir yet, or an owner without a name
        return f"mkdir -m 700 {shlex.quote(str(directory))}"
    return f"sudo install -d -o {user} -g {group} -m 700 {shlex.quote(str(directory))}"


def cmd_backup(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.filemodes import PRIVATE, UnsafeFile, refuse_unsafe_database
    from gateway.store import rescue

    refuse_root_in_service_dir(cfg)  # root's -wal/-shm, left by a crash, would lock the daemon out
    source = cfg.db_path
    if not (source.exists() and source.stat().st_size > 0):
        raise no_database(source)
    try:
        refuse_unsafe_database(source)  # a link or another user's file planted there is never read
    except UnsafeFile as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    use_database(cfg)
    refuse_lost_wal(source)
    dest, dated = Path(args.path), False
    try:
        dest, dated = _destination(cfg, dest, str(args.path), force=args.force)
        refuse_open_directory(cfg, dest.parent)
        for left, pid, size in remove_unfinished(dest, dated=dated):
            why = f"left unfinished by a backup (pid {pid}) no longer running"
            print(f"smsgw: removed {left} ({size / 1e6:.1f} MB), {why}", file=sys.stderr)
        # Written under another name and renamed once whole and checked: a backup cut off (disk full,
        # Ctrl-C) never lies under the name of a good one. The name is in a directory of its own that
        # no one could foresee (mkdtemp: random, O_EXCL, 0700): SQLite opens the copy and its -journal
        # by name, and `.NAME.PID.tmp` beside the backups, opened to truncate, followed a link another
        # user put there to any file, or wrote the database into their 0666 file.
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=f".{os.getpid()}.tmp", dir=dest.parent))
    except OSError as exc:
        directory = dest if not dated and str(args.path).endswith(("/", os.sep)) else dest.parent
        raise CliError(not_writable_here(cfg, directory, exc)) from None
    tmp = work / dest.name
    try:
        made = -1
        try:
            # 0600 from its creation, whatever the umask: it holds texts and password hashes.
            made = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE)
            os.fchmod(made, PRIVATE)
            version, messages = _copy(source, tmp, dest)
            if not os.path.samestat(os.lstat(tmp), os.fstat(made)):  # no one but us (and root) writes there
                raise CliError(f"the copy {tmp} was replaced while it was written; no backup written")
            os.fsync(made)  # a full disk may show only here (NFS, delayed allocation)
            os.replace(tmp, dest)
            rescue.fsync_path(dest.parent, os.O_RDONLY | os.O_DIRECTORY)  # the rename itself on disk
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise CliError(not_written(dest, exc.strerror or str(exc), source, full=full)) from None
        finally:
            if made >= 0:
                os.close(made)
    finally:
        remove_private_dir(work)  # all that is left of the copy: only we could put anything in it
    size = dest.stat().st_size / 1e6
    print(f"backup written: {dest} ({size:.1f} MB, schema version {version}, {messages} messages)")
    return 0


def _copy(source: Path, tmp: Path, dest: Path) -> tuple[int, int]:
    """Copy the live database into `tmp` and check it whole: (schema version, messages)."""
    try:
        # Read-only: a connection that may write checkpoints and deletes the WAL when it closes
        # last, which would leave a crash's WAL flag behind with no WAL (`gateway.store.walcheck`).
        live_uri = f"file:{pathname2url(str(source.absolute()))}?mode=ro"
        with (
            closing(sqlite3.connect(live_uri, uri=True, timeout=30)) as live,
            closing(sqlite3.connect(tmp)) as copy,
        ):
            live.backup(copy)  # pages=-1: every page in one step, one snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            problems = integrity_problems(copy)
            version = copy.execute("SELECT version FROM schema_version").fetchone()[0]
            messages = copy.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    except sqlite3.Error as exc:
        if copy_write_failed(exc):
            raise CliError(not_written(dest, str(exc), source, full=disk_full(exc))) from exc
        raise CliError(database_error(source, exc)) from exc
    if problems is not None:
        raise CliError(
            f"the copy of {source} failed its integrity check ({problems}); no backup written."
            " The database is damaged: stop the daemon and restore the last good backup"
            " (`smsgw restore BACKUP`)"
        )
    return version, messages


def refuse_lost_wal(db: Path) -> None:
    """Exit 3, as `smsgw run` and `status` do, when a crash's WAL beside `db` lost committed frames.

    Checked before the first read, and only while no process has the database open (a running
    daemon's WAL is live, no leftover): SQLite's recovery at that read rewrites the -shm to match
    the WAL as it is, cut short or not, and the next start then found nothing wrong, checkpointed
    what was left and sent SMS already delivered again (their parts back to queued)."""
    from gateway.store.fileguard import StoreUnusable
    from gateway.store.walcheck import refuse_lost_commits

    try:
        refuse_lost_commits(db, time.time())
    except StoreUnusable as exc:
        raise CliError(str(exc), EXIT_CONFIG) from exc


def _destination(cfg: Config, dest: Path, given: str, *, force: bool) -> tuple[Path, bool]:
    """The file the backup goes to, and whether it is a dated name in the directory given."""
    if given.endswith(("/", os.sep)) and not dest.is_dir():
        # Meant as a directory (a cron line's `/var/backups/smsgw/`): written as a file, the next
        # night's backup would then be refused as "exists".
        raise CliError(f"directory {dest} does not exist; create it first: {make_dir(cfg, dest)}", EXIT_USAGE)
    dated = dest.is_dir()
    if dated:
        # UTC, as README says and as the name carries no zone: local time named two backups of
        # the autumn's repeated hour alike, and read an hour off on a server in another zone.
        dest = dest / f"smsgw-{datetime.now(UTC):%Y%m%d-%H%M%S}.db"
    if not dest.parent.is_dir():
        hint = make_dir(cfg, dest.parent)
        raise CliError(f"directory {dest.parent} does not exist; create it first: {hint}", EXIT_USAGE)
    if (own := daemon_file(cfg, dest)) is not None:
        # Even with --force: the copy over the WAL of a running daemon stopped it (`gateway.cli.daemonfiles`).
        raise CliError(f"{dest} is {own}; a backup is never written there, give another path", EXIT_USAGE)
    if dest.exists() and not force:
        raise CliError(f"{dest} exists; give another path, or --force to replace it")
    return dest, dated


def refuse_open_directory(cfg: Config, directory: Path) -> None:
    """Refuse to write the backup in `directory` when another user could rename what is in it, or a
    directory above it: SQLite opens the copy and its -journal by name, in a directory only we write
    in; one who may rename that directory can put their own in its place between our mkdir and
    SQLite's open, with a link in it that sends the database (password hashes, SMS texts) into a file
    they read, or over any file this user may write.

    Each directory from `/` down must belong to this user or root and, if its group or every user may
    write in it, have the sticky bit (as /tmp), which keeps others from renaming our entries: sshd's
    StrictModes asks as much of the way to authorized_keys. A backup directory of the service's user,
    root's /var/backups or /tmp pass; a group-writable /srv/backup needs `chmod +t`."""
    from gateway.filemodes import mode_text, owner_name

    real = directory.resolve(strict=True)
    for each in (real, *real.parents):
        st = os.lstat(each)
        if st.st_uid not in (os.geteuid(), 0):
            why, fix = f"belongs to user {owner_name(st.st_uid)}", "give it to this user or root (chown)"
        elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            who = "every user" if st.st_mode & stat.S_IWOTH else "its group"
            why = f"is writable by {who} ({mode_text(st.st_mode)}) without the sticky bit"
            fix = f"chmod go-w {shlex.quote(str(each))}, or chmod +t (others may then rename only their own)"
        else:
            continue
        raise CliError(
            f"cannot write the backup in {directory}: {each} {why}; another user could swap the name the"
            f" copy is written under for a link, and have the database written into a file they read or"
            f" over another file. {fix[0].upper()}{fix[1:]}, or give a directory of this user:"
            f" {make_dir(cfg, directory)}",
            EXIT_USAGE,
        )


def remove_private_dir(path: Path) -> int | None:
    """Remove the directory a backup wrote its copy in, and the files in it (bytes freed), unless it
    is not a directory of this user (None). Only we may put entries there, so none is looked at."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    size = 0
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return None
        for name in os.listdir(fd):
            try:
                size += os.stat(name, dir_fd=fd, follow_symlinks=False).st_size
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass  # gone meanwhile; rmdir says if anything stayed
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        return None
    return size


def not_writable_here(cfg: Config, directory: Path, exc: OSError) -> str:
    """What a backup that cannot write in `directory` says (a directory this user may not write, a
    read-only filesystem): the path, the reason, and how to make a directory the service's user
    writes. It was a traceback."""
    said = f"cannot write the backup in {directory}: {exc.filename or directory}: {exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{said}; free space there, or give another place"
    if exc.errno == errno.EROFS:
        return f"{said}; give a directory on a writable disk"
    return (
        f"{said}; run it as a user that may write there, or give a directory the service's user"
        f" writes: {make_dir(cfg, directory)}"
    )


# SQLite's result codes of a failed write (or a full disk): with the live database open read-only,
# they are the copy's, which is written; the live database is only read.
_WRITE_CODES = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR_WRITE,
    sqlite3.SQLITE_IOERR_FSYNC,
    sqlite3.SQLITE_IOERR_DIR_FSYNC,
    sqlite3.SQLITE_IOERR_TRUNCATE,
}


def copy_write_failed(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed writing the copy (a full disk), not reading the live database."""
    return getattr(exc, "sqlite_errorcode", None) in _WRITE_CODES or disk_full(exc)


def disk_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_FULL


def not_written(dest: Path, reason: str, source: Path, *, full: bool) -> str:
    """A copy that could not be written, said of the backup's place, not of the live database:
    "database /var/lib/smsgw/smsgw.db: database or disk is full" sent the admin to free space in
    the state directory while the backup's disk was full. `full`: the disk said so."""
    try:
        need = f" (it needs about {source.stat().st_size / 1e6:.1f} MB, the database's size)"
    except OSError:
        need = ""
    what = (
        "Free space where it goes" if full else "Check the disk it goes to; if it is full, free space there"
    )
    return (
        f"cannot write the backup {dest}: {reason}; no backup written, the database is untouched."
        f" {what}{need}, or give another place"
    )


def remove_unfinished(dest: Path, *, dated: bool) -> list[tuple[Path, int, int]]:
    """Remove the temporary copies that backups to `dest` left when killed (a nightly job's timeout,
    kill -9, a crash): (path, pid, bytes) of each. Each is as large as the database, and nothing
    else removes them: night after night they filled the disk. Only ours, whose process is gone (a
    backup still running keeps its copy): a directory of this user named as a backup to `dest`
    names the one it writes its copy in (`.NAME.XXXXXXXX.PID.tmp`; for a directory, any
    `smsgw-YYYYMMDD-HHMMSS.db`), or a regular file of this user named as earlier versions named
    the copy itself (`.NAME.PID.tmp`)."""
    from gateway.store.restoretmp import remove_dead_copies

    name = _DATED if dated else re.escape(dest.name)
    pid = "([1-9][0-9]{0,6})"  # pid_max is at most 4194304
    removed = remove_dead_copies(dest.parent, re.compile(rf"\.({name})\.{pid}\.tmp"), pid_group=2)  # older
    mkdtemp = re.compile(rf"\.({name})\.[a-z0-9_]{{8}}\.{pid}\.tmp")
    try:
        names = sorted(dest.parent.iterdir())
    except OSError:  # a directory we may write in but not list
        names = []
    for path in names:
        found = mkdtemp.fullmatch(path.name)
        if (
            found is not None
            and not pid_alive(int(found[2]))
            and (size := remove_private_dir(path)) is not None
        ):
            removed.append((path, int(found[2]), size))
    return removed


def integrity_problems(conn: sqlite3.Connection) -> str | None:
    """What `PRAGMA integrity_check` finds wrong with the file of `conn`, its first two problems in
    one line; None when it is sound."""
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(2)")]
    return None if problems == ["ok"] else "; ".join(" ".join(p.split()) for p in problems)


def add_backup_commands(sub: Any) -> None:
    b = sub.add_parser(
        "backup",
        help="copy the live database, consistently, while the daemon runs",
        description="Write a consistent copy of the database to PATH (a file, or a directory to put"
        " smsgw-YYYYMMDD-HHMMSS.db in), checked whole (PRAGMA integrity_check), fsynced, mode 0600. Safe"
        " while the daemon runs; copying smsgw.db with cp is not (recent mail lives in smsgw.db-wal).",
    )
    b.add_argument("path", metavar="PATH", help="file or directory to write the copy to")
    b.add_argument("--force", action="store_true", help="replace PATH if it exists")
    b.set_defaults(func=cmd_backup)
