"""`smsgw restore BACKUP`: put a backup in place of the database, with the daemon stopped.

Copying a backup over `smsgw.db` by hand goes wrong quietly. Done while the daemon runs, the
daemon writes on through its open file and its WAL into pages of the copy: indexes end up
disagreeing with their tables, every later mail may fail, and the start's `quick_check` does not
see it. Done with the old `smsgw.db-wal` left beside it, SQLite replays the old WAL into the copy.
So the command holds the state directory's lock (no daemon can run or start meanwhile) and the
lock of the database's users (no other command has it open, none opens it meanwhile), checks the
backup whole (`PRAGMA integrity_check`), and installs it by rename. The database it replaces is
kept beside it, with its WAL, under another name: restoring the wrong file loses nothing. What
that database knows went out after the backup was taken (SMS the SMSC took or an admin cancelled,
mails sent, the phones' answers received and mailed, the limits' counts, ids handed out) is carried
into the copy first, when it is the same database grown on (`gateway.restorecarries`): else the phones
got those SMS twice. So is what it still owed: mail accepted after the backup and not yet sent as SMS,
answers not mailed yet, and bounces not sent yet; the months billed since, not to be billed again
(`billing_reports.restorecarry`; when nothing can be carried, read from their files on disk:
`billing_reports.restoreblind`); and a phone's erasure made since, made again on the backup's rows
(`gateway.privacy.restorecarry`). Another gateway's database given as the backup,
over one that holds data, is refused unless `--force` (`gateway.store.restorematch`): put in place,
it lost this gateway's accounts and users and sent the other's queued SMS from here.

The order of the steps is chosen for a crash in the middle: until the final rename, `smsgw.db` is
either the old database with its WAL or missing, and a missing one (its marker `smsgw.db.id` made
sure of first) stops the next start loudly instead of giving it an empty database; the restore run
again carries from the database set aside, whose name was written down before it was moved.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from gateway import statelock
from gateway.cli.commandpath import as_user
from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE, CliError, refuse_root_in_service_dir
from gateway.cli.daemonfiles import database_file
from gateway.cli.restartwords import how_to_stop, unit_for
from gateway.cli.restorestart import start_line

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.restorematch import Mismatch


def cmd_restore(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.filemodes import UnsafeFile, refuse_unsafe

    refuse_root_in_service_dir(cfg)  # a database owned by root would lock the daemon out
    backup, db = Path(args.backup), cfg.db_path
    if not backup.is_file():
        raise CliError(f"backup {backup} does not exist or is not a file", EXIT_USAGE)
    if (own := database_file(cfg, backup)) is not None:  # a hard link, or its WAL, too
        raise CliError(f"{backup} is {own}; give the backup to restore", EXIT_USAGE)
    if not cfg.state_dir.is_dir():
        raise CliError(
            f"state_dir {cfg.state_dir} does not exist (is state_dir right?); create it first"
            " (`smsgw install-service` or the daemon's first start does)"
        )
    try:
        refuse_unsafe(cfg.state_dir / statelock.USE_FILE)  # opened without following a link: said so
    except UnsafeFile as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    try:
        with statelock.held(cfg.state_dir), statelock.database_alone(cfg.state_dir, USERS_WAIT):
            seeded = [a.name for a in cfg.account], [u for a in cfg.account for u in a.users]
            # The unit that runs the daemon on this config; not one installed for another (production's,
            # beside a staging daemon started by hand), which `systemctl start smsgw` would start instead.
            service = unit_for(Path(args.config)) if getattr(args, "config", None) else None
            billing = (cfg.billing_dir, ZoneInfo(cfg.gateway.timezone), time.time())
            return _restore(backup, db, force=args.force, seeded=seeded, service=service, billing=billing)
    except statelock.DatabaseInUse as exc:
        raise CliError(
            f"database {db} is open in another smsgw command ({exc}): wait for it to end (or stop it),"
            " then restore; a command holding the old file would write into the one set aside, or through"
            " its WAL into the restored one"
        ) from None
    except statelock.StateDirBusy as exc:
        who = f"pid {exc.pid}" if exc.pid else "another process"
        raise CliError(
            f"smsgw is running ({who}) with state_dir {cfg.state_dir}: stop it first"
            f" ({how_to_stop(cfg.state_dir, exc.pid)}), then restore; a database replaced under a running"
            " daemon is damaged"
        ) from None
    except PermissionError as exc:
        raise CliError(
            f"cannot write in {cfg.state_dir} ({exc.strerror}): run this as the owner of the state"
            f" directory (e.g. `{as_user('smsgw', 'restore ...')}`)"
        ) from None


def _user_name(uid: int) -> str:
    """The name to give `sudo -u`: it takes a number only as `#uid`."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"'#{uid}'"


# How long a restore waits for commands that have the database open (a monitoring `status`) to end.
USERS_WAIT = 3.0
COMPANIONS = ("-wal", "-journal")  # SQLite's files that belong to the database beside them


def _restore(
    backup: Path,
    db: Path,
    *,
    force: bool = False,
    seeded: tuple[list[str], list[str]] = ([], []),
    service: str | None = None,
    billing: tuple[Path, ZoneInfo, float] | None = None,
) -> int:
    """Copy, check and install `backup` at `db`, unless `db` is another database than the backup's
    that holds data (`gateway.store.restorematch`: its `seeded` accounts and users are no data) and
    not `force`; the caller holds the state directory's lock. `service`: the unit that runs the
    daemon on this config, named to start it again (None: it was started by hand). `billing`: the
    billing directory, its time zone and now, for the months billed since the backup when nothing can
    be carried (`gateway.restorecarries`)."""
    from gateway.filemodes import PRIVATE
    from gateway.store import marker, restorematch, restoretmp, walcheck
    from gateway.store.rescue import fsync_path

    for left, pid, size in restoretmp.remove_unfinished(db):
        why = f"left unfinished by a restore (pid {pid}) no longer running"
        print(f"smsgw: removed {left} ({size / 1e6:.1f} MB), {why}", file=sys.stderr)
    # A restore cut off between setting the old database aside and the swap left no `smsgw.db`: the
    # database set aside is the one replaced, and what it shows sent is carried from it again.
    replaced = db if db.exists() else _noted_aside(db)
    if replaced is not None and replaced != db:
        for suffix in COMPANIONS:  # cut off between the database's rename and its WAL's: joined again
            if Path(f"{db}{suffix}").exists() and not Path(f"{replaced}{suffix}").exists():
                os.rename(f"{db}{suffix}", f"{replaced}{suffix}")
    old = replaced.stat() if replaced is not None else None
    tmp = restoretmp.copy_path(db, os.getpid())  # a dot: no rescued copy, no backup
    aside: Path | None = None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
    try:
        try:
            if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                # The daemon's user must own the file it opens for writing, as it owned the old one.
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, PRIVATE)  # whatever the umask: it holds texts and password hashes
        except PermissionError:
            owner = _user_name(old.st_uid) if old else "smsgw"
            raise CliError(
                f"database {db} belongs to uid {old.st_uid if old else '?'}: run this as the {owner} user"
                f" (`{as_user(owner, 'restore ...')}`), so that the restored file is the daemon's too"
            ) from None
        finally:
            os.close(fd)
        version, messages = _copy_checked(backup, tmp)
        if not force and replaced is not None:
            if (other := restorematch.another_database(tmp, replaced, *seeded)) is not None:
                raise CliError(_another(backup, replaced, other))
        carried, access, reverted = _carry(backup, tmp, replaced, billing)
        if replaced is not None and replaced != db:
            cut = f"{db.name} was missing (a restore cut off before its swap), {replaced.name} read"
            said = f"{cut}: {carried}"
        else:
            said = carried
        _record_restore(tmp, backup, version, messages, "; ".join(s for s in (said, access) if s))
        fsync_path(tmp, os.O_RDONLY)
        # Protected before the swap: a crash in it leaves no `smsgw.db`, which the next start
        # must refuse rather than create anew (`gateway.store.marker`).
        marker.record(db, time.time(), created=False)
        if db.exists() or any(Path(f"{db}{s}").exists() for s in COMPANIONS):
            # A WAL without its database too (a restore cut off between its renames, a damaged file
            # moved away by hand): SQLite replays any `-wal` beside a database into it at its open.
            aside = _set_aside(db)
        Path(f"{db}-shm").unlink(missing_ok=True)  # the old WAL's index: rebuilt at the next open
        walcheck.flag_path(db).unlink(missing_ok=True)  # it spoke of the WAL set aside with the old file
        os.replace(tmp, db)
        fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
        aside_note(db).unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"restored {backup} to {db} (schema version {version}, {messages} messages)")
    if aside is not None:
        print(f"the database it replaced is kept as {aside}; delete it once the restore is confirmed")
    print(said)
    if access:
        print(access)
    if reverted:
        print("changed since the backup and now as the backup had them (nothing of access is carried):")
        print("".join(f"  {line}\n" for line in reverted), end="")
    print(start_line(db, service, nothing_carried=carried.startswith("nothing carried")))
    return 0


def _another(backup: Path, db: Path, other: Mismatch) -> str:
    """The refusal of a backup of another database over one that holds data: both named, so that
    the admin can tell which is which, and the flag that restores it all the same."""
    return (
        f"{backup} is not a backup of {db}, which holds data. {db.name}: {other.replaced}. {backup.name}:"
        f" {other.backup}. Restored, the backup's accounts, users and queue would replace these and its"
        " queued SMS go out from this gateway. Nothing was changed; to replace this database with it all"
        f" the same (a gateway moved to this server), run `smsgw restore --force {backup}`"
    )


def _carry(
    backup: Path, copy: Path, replaced: Path | None, billing: tuple[Path, ZoneInfo, float] | None
) -> tuple[str, str, list[str]]:
    """What the copy takes over from the database it replaces (`gateway.store.restorecarry`), said
    in one line: what, or why nothing; then the line on the settings of access changed since the backup,
    which the copy has as the backup had them (`gateway.restoreaccess`), and a line for each with its
    command."""
    from gateway import restoreaccess, restorecarries
    from gateway.cli.backup import copy_write_failed

    try:
        # As a URI, so that the replaced database is attached as one (read-only) on every SQLite build.
        with closing(sqlite3.connect(f"file:{quote(str(copy))}", uri=True, isolation_level=None)) as conn:
            carried = restorecarries.carry(conn, replaced, billing)
            # Only from the same database grown on: another's accounts and users are no changes since.
            access = (
                None
                if isinstance(carried, str) or replaced is None
                else restoreaccess.compare(conn, replaced)
            )
    except sqlite3.Error as exc:
        if copy_write_failed(exc):
            raise CliError(no_room(backup, copy, exc)) from None
        raise CliError(f"cannot write into the copy ({exc}); nothing was changed") from None
    said = carried if isinstance(carried, str) else carried.said()
    if access is None:
        return said, "", []
    return said, access.said(), access.lines()


def _copy_checked(backup: Path, tmp: Path) -> tuple[int, int]:
    """Copy `backup` into `tmp` through SQLite (a WAL beside the backup is read with it) and check
    the copy whole; its schema version and number of messages."""
    from gateway.cli.backup import copy_write_failed, integrity_problems
    from gateway.store.schema import SCHEMA_VERSION

    try:
        with (
            closing(sqlite3.connect(f"file:{quote(str(backup.resolve()))}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(tmp)) as copy,
        ):
            src.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            problems = integrity_problems(copy)
            if problems is not None:
                raise CliError(
                    f"backup {backup} failed its integrity check ({problems}); nothing was changed:"
                    " restore an older backup"
                )
            try:
                (version,) = copy.execute("SELECT version FROM schema_version").fetchone()
                (messages,) = copy.execute("SELECT COUNT(*) FROM messages").fetchone()
            except (sqlite3.OperationalError, TypeError):
                raise CliError(
                    f"{backup} is no smsgw database (it has no schema_version); nothing was changed"
                ) from None
    except sqlite3.DatabaseError as exc:
        if copy_write_failed(exc):  # the copy in the state directory, not the backup
            raise CliError(no_room(backup, tmp, exc)) from None
        raise CliError(f"backup {backup} cannot be read ({exc}); nothing was changed") from None
    if version > SCHEMA_VERSION:
        raise CliError(
            f"backup {backup} is at schema version {version}, newer than this smsgw's ({SCHEMA_VERSION}):"
            " restore it with the smsgw version that wrote it; nothing was changed"
        )
    return int(version), int(messages)


def _record_restore(copy: Path, backup: Path, version: int, messages: int, carried: str) -> None:
    """The restore's row in the audit trail of the database it installs, written into the copy
    before it is put in place: the trail then says that its later rows follow a restore, by whom,
    and of which backup. The backup by its file name alone: a row is shown in the panel, where a
    path names the server's directories. A backup older than the trail (schema version 9) has no
    table to hold it; the daemon's start makes one, and the restore goes unrecorded.
    """
    from gateway.cli.audit import cli_actor
    from gateway.cli.backup import copy_write_failed
    from gateway.store import audit

    detail = f"from {backup.name} (schema version {version}, {messages} messages); {carried}"
    try:
        with closing(sqlite3.connect(copy)) as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone():
                audit.record(conn, time.time(), cli_actor(), None, "database.restore", detail)
                conn.commit()
    except sqlite3.Error as exc:
        if copy_write_failed(exc):
            raise CliError(no_room(backup, copy, exc)) from None
        raise CliError(
            f"cannot write the restore's audit row into the copy ({exc}); nothing was changed"
        ) from None


def no_room(backup: Path, copy: Path, exc: sqlite3.Error) -> str:
    """A copy that the state directory has no room for, said as such: "backup X cannot be read
    (database or disk is full)" sent the admin to a sound backup. The copy goes beside the database
    it replaces, which is kept: the state directory needs about twice the backup's size."""
    from gateway.cli.backup import disk_full

    try:
        size = f" ({backup.stat().st_size / 1e6:.1f} MB)"
    except OSError:
        size = ""
    room = f"free space for about twice the backup's size{size} there"
    what = room[0].upper() + room[1:] if disk_full(exc) else f"Check that disk; if it is full, {room}"
    return (
        f"cannot copy backup {backup} into the state directory {copy.parent} ({exc}); nothing was"
        " changed, the backup is not at fault. The copy is written beside the database it replaces,"
        f" which is kept: {what}, then restore again"
    )


def _set_aside(db: Path) -> Path:
    """Move the current database, and its WAL and journal, to `<db>.before-restore-<UTC time>`.

    Renamed together the pair stays a whole database (SQLite reads `<name>-wal` with `<name>`): the
    WAL may hold the latest commits of a daemon that was killed. Left in place, that WAL would be
    replayed into the restored file at its first open and damage it.
    """
    from gateway.store.rescue import fsync_path

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside, n = db.with_name(f"{db.name}.before-restore-{stamp}"), 1
    while any(Path(f"{aside}{s}").exists() for s in ("", *COMPANIONS)):
        n += 1
        aside = db.with_name(f"{db.name}.before-restore-{stamp}-{n}")
    if db.exists():
        # Where it goes, written down first: a restore cut off before the swap leaves no `smsgw.db`,
        # and the next one carries from this file instead of from nothing (every SMS the backup
        # shows queued went out again, though this file shows them sent).
        note = aside_note(db)
        with open(note, "w", encoding="utf-8") as f:
            f.write(aside.name + "\n")
            f.flush()
            os.fsync(f.fileno())
        fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
        os.rename(db, aside)
    for suffix in COMPANIONS:
        if Path(f"{db}{suffix}").exists():
            os.rename(f"{db}{suffix}", f"{aside}{suffix}")
    fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    return aside


def aside_note(db: Path) -> Path:
    """The file naming where a restore is moving the database it replaces, until the swap is done."""
    return db.with_name(f".{db.name}.restore-aside")


def _noted_aside(db: Path) -> Path | None:
    """The database a restore cut off before its swap set aside, when `db` is missing: named by the
    note it left (only a name beside `db`, never a path elsewhere)."""
    try:
        name = aside_note(db).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    aside = db.with_name(name)
    if not name.startswith(f"{db.name}.before-restore-") or "/" in name or not aside.is_file():
        return None
    return aside


def add_restore_commands(sub: Any) -> None:
    r = sub.add_parser(
        "restore",
        help="put a backup in place of the database (the daemon stopped)",
        description="Replace the database with BACKUP (a `smsgw backup` copy or a rescued copy): refused"
        " while the daemon runs; the backup is checked whole first (PRAGMA integrity_check); the"
        " database it replaces is kept beside it as smsgw.db.before-restore-<UTC time>, with its WAL;"
        " what it shows sent since the backup (SMS, mails, answers, billing, ids) is not sent or handed out"
        " again, what it shows owed (mail accepted since and not yet sent as SMS, answers not mailed,"
        " bounces and billing mails not sent) goes, and a phone erased since (`phone forget`) stays erased;"
        " the accounts and premium services added since are named, not carried. A BACKUP of another"
        " database is refused over one that holds data"
        " (accounts, users, mail) unless --force. Going back to an older smsgw: restore the backup taken"
        " before the upgrade with this (the newer) smsgw, then install the older one and start it: the"
        " older one's own restore may not know what the newer did, and its SMS since then go to the"
        " phones again.",
    )
    r.add_argument("backup", metavar="BACKUP", help="the backup file to restore")
    r.add_argument(
        "--force",
        action="store_true",
        help="replace the database even when it holds data and BACKUP is not a backup of it (another"
        " gateway's database)",
    )
    r.set_defaults(func=cmd_restore)
