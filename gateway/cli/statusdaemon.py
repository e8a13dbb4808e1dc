"""`smsgw status` before it reads the database: whether the daemon runs, as its lock on the state
directory and its status file tell, and whether another process holds the database locked, and who.

A stopped daemon's database held by an sqlite3 shell in exclusive locking mode (or a backup tool
holding its write lock) kept `status` in SQLite's busy waits for 34 s, then exiting 1 ("runs with
trouble") with nothing on stdout: a monitoring check timed out, or read a stopped gateway as
running. The daemon's state comes from its lock and status file, which need no database; the
database gets a wait as short as a status under a running daemon takes to name a lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import statelock
from gateway.cli import common
from gateway.cli.common import (
    EXIT_CONFIG,
    CliError,
    DaemonStarting,
    pid_alive,
    refuse_root_in_service_dir,
    use_database,
)

if TYPE_CHECKING:
    from gateway.config import Config

# How long status waits for a lock on the database before it says who holds it. A write of the
# daemon's holds it for milliseconds; a status under a running daemon named a lock in about 2 s.
LOCK_WAIT_SECONDS = 2.0


STATUS_STALE_SECONDS = 30  # the daemon rewrites its status file every 2 s


def when(ts: float | None) -> str:
    """A time in [gateway] timezone with its offset ("2026-12-04 10:41:02 +01:00"): the logs are in
    UTC, and without the zone the two read an hour apart."""
    from datetime import datetime

    if not ts:
        return "-"
    # No zone configured (before a config is read): the machine's, as `common.when` prints then.
    offset = datetime.fromtimestamp(ts, common._zone).astimezone(common._zone).strftime("%z")
    return f"{common.when(ts)} {offset[:3]}:{offset[3:]}"


UNKNOWN = -1  # `holder` where the state directory's lock could not be read: the status file alone


def lock_holder(cfg: Config) -> int | None:
    """The daemon's pid as its lock on the state directory tells (`statelock.daemon_pid`), UNKNOWN
    where that cannot be read."""
    try:
        return statelock.daemon_pid(cfg.state_dir)
    except OSError:
        return UNKNOWN


def daemon_state(status: dict[str, Any] | None, now: float, holder: int | None = UNKNOWN) -> str | None:
    """Why the daemon counts as not running (or not yet), or None when it runs.

    `holder` is the pid holding the state directory's lock (None: nobody). A daemon migrating or
    checking a large database at its start holds it long before it writes a status file, and a
    status file's pid that is alive may be another process's (reused, or a copied state directory)."""
    pid = int((status or {}).get("pid", 0) or 0)
    if holder is not None and holder != UNKNOWN and (status is None or (holder and pid != holder)):
        return f"starting (pid {holder or 'unknown'}): it has not written its status yet"
    if status is None:
        return "not running"
    if holder is None or not pid_alive(pid):
        return f"not running (pid {status.get('pid')} has exited without a clean stop)"
    if now - status.get("updated_at", 0) > STATUS_STALE_SECONDS:
        return f"not answering: pid {status['pid']} last wrote its status {when(status.get('updated_at'))}"
    return None


def running_words(cfg: Config, status: dict[str, Any]) -> str:
    """The text's daemon line for a daemon that runs: `running, pid N`, or, where its code is not the
    installed smsgw's (an upgrade not followed by a restart), which it runs and how to restart it. A
    daemon of 0.2.36 under 0.2.37's files showed as `running, pid N`, and nothing said the upgrade had
    not taken. A status file naming no version is an older smsgw's (before 0.2.38)."""
    from gateway import __version__
    from gateway.cli.newerdaemon import newer, newer_words
    from gateway.cli.restartwords import how_to_restart

    pid, ran = status.get("pid"), status.get("version")
    if ran == __version__:
        return f"running, pid {pid}"
    if isinstance(ran, str) and newer(ran, __version__):
        return f"running {ran}, pid {pid}, {newer_words(cfg, ran)}"
    which = f"running {ran}" if ran else "running an older smsgw (its status names no version)"
    return f"{which}, pid {pid}, installed {__version__}: restart it ({how_to_restart(cfg.state_dir, pid)})"


def daemon_json(down: str | None, status: dict[str, Any] | None) -> dict[str, Any]:
    """`status --json`'s daemon: why it is not running or not answering, as the text's daemon line
    (`null` said neither); or its status, with the version it runs (None: an smsgw before 0.2.38,
    whose status names none) and the one installed, which a restart would run."""
    from gateway import __version__

    if down is not None or status is None:
        return {"state": down}
    return {"state": "running", **status, "version": status.get("version"), "installed_version": __version__}


def start_words(cfg: Config, holder: int | None) -> str | None:
    """What the daemon's start file says it does (`starting (pid N, smsgw V): checking the database
    (1.8 GB)`), for one holding the lock; a check of a large database takes minutes."""
    from gateway.statusfile import read_starting, starting_words

    start = read_starting(cfg.state_dir)
    if holder is None or not start or start.get("pid") != holder or not (doing := starting_words(start)):
        return None
    return DaemonStarting(holder, start.get("version"), doing).state


def daemon_now(cfg: Config, status: dict[str, Any] | None, now: float, holder: int | None) -> str | None:
    """`daemon_state`, and for a daemon in its start what the start does: checking a large
    database takes minutes; for one whose start was cut short, that start."""
    down = daemon_state(status, now, holder)
    if down is not None and down.startswith("not running") and (cut := start_cut_short(cfg, holder)):
        down = cut
    if down is not None and down.startswith("starting") and (doing := start_words(cfg, holder)):
        down = doing
    if down is not None and down.startswith("starting") and status is None and holder:
        down = unreadable_status(cfg.state_dir, holder) or down
    if down is not None and down.startswith("starting") and (room := low_room(cfg.state_dir)):
        down = f"{down}; {room}"
    return down


def start_cut_short(cfg: Config, holder: int | None) -> str | None:
    """The daemon's line where its last start stopped before it opened the database (killed -9 while
    it upgraded it): its start file stays, naming its pid and what it did. The status file's pid is
    an earlier daemon's (the one before the upgrade), and status named that one as "exited without a
    clean stop", nothing saying that an upgrade was cut short."""
    from gateway.statusfile import read_starting, starting_words, upgrade_over

    if holder is not None:  # a daemon holds the lock (or it cannot be read): no start is over
        return None
    start = read_starting(cfg.state_dir) or {}
    try:
        pid = int(start.get("pid") or 0)
    except (TypeError, ValueError):
        return None
    if pid <= 0 or pid_alive(pid):
        return None
    version = f", smsgw {start['version']}" if start.get("version") else ""
    to = start.get("to")
    finished_by_it = upgrade_over(start)  # its start file says so
    if (
        start.get("phase") == "upgrading"
        and isinstance(to, int)
        and not finished_by_it
        and (schema_of(cfg.db_path) or 0) >= to
    ):
        # A command finished the upgrade since (every command upgrades an older database it opens),
        # and status said the upgrade was cut short above the database's new schema. A start killed
        # after its own last migration committed is said so by its start file, not "since".
        since = f"the database was upgraded to schema {to} since"
        return f"not running (the start of pid {pid}{version} was cut short; {since})"
    doing = starting_words(start) or "opening the database"
    return f"not running (the start of pid {pid}{version} was cut short while {doing})"


def schema_of(path: Path) -> int | None:
    """The database's schema, read only (None: not read, a planted file or link never opened): status
    does not upgrade it. Waits for a writer's lock `LOCK_WAIT_SECONDS` at most."""
    from gateway.filemodes import refuse_unsafe_database

    try:
        refuse_unsafe_database(path)
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=LOCK_WAIT_SECONDS)) as conn:
            (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except (OSError, sqlite3.Error, TypeError):
        return None
    return int(version) if version is not None else None


def unreadable_status(state_dir: Path, holder: int) -> str | None:
    """The daemon's line where its status file is there and this user may not read it (a daemon of
    root's, the file 0600): it said "starting (pid N): it has not written its status yet" of a daemon
    running for days, and the admin gave the state directory away to make it readable."""
    from gateway.statusfile import STATUS_FILE
    from gateway.sudoline import again_as, user_name

    path = state_dir / STATUS_FILE
    try:
        path.read_bytes()
        return None
    except PermissionError:
        pass
    except OSError:
        return None
    try:
        owner = user_name(path.stat().st_uid) or f"uid {path.stat().st_uid}"
    except OSError:
        owner = "another user"
    return (
        f"running (pid {holder}), its status unknown: its status file {path} belongs to {owner} and this"
        f" user may not read it; run this as {owner} (the daemon runs as {owner}): `{again_as(owner)}`"
    )


def low_room(state_dir: Path) -> str | None:
    """The state directory's disk, when nearly full, for a daemon that holds its lock and has no
    status file: one started on a full disk (after an upgrade, which leaves none to overwrite in
    place) cannot write it, refuses every mail with 452, and status said only "starting"."""
    from gateway.cli.diskroom import disk_room

    return disk_room(
        state_dir,
        low_only=True,
        stops="a daemon on a full disk cannot write its status and refuses new mail (452)",
    )


class DatabaseLocked(CliError):
    """Another process held the database past LOCK_WAIT_SECONDS; `pids` are those /proc/locks names."""

    def __init__(self, path: Path, pids: list[int], advice: str) -> None:
        who = "; ".join(f"pid {pid}{_program(pid)}" for pid in pids)
        by = f" ({who})" if who else ""
        super().__init__(
            f"database {path} is locked by another process{by} and stayed so for {LOCK_WAIT_SECONDS:g} s:"
            f" {advice}; status cannot read the queue and the outbox meanwhile"
        )
        self.pids = pids


def probe_lock(cfg: Config, advice: str, besides: int | None = None) -> None:
    """Raise DatabaseLocked when the database cannot be read within LOCK_WAIT_SECONDS.

    What `open_store` does before its first read is done first, in its order: root refused in the
    service's directory, the database marked in use against a restore, and a damaged WAL found
    before SQLite's read could hide it. A missing database, or one that cannot be read for another
    reason, is left to `open_store` to say. `besides` (the daemon's pid) is not named as a holder."""
    from gateway.filemodes import refuse_unsafe_database
    from gateway.store.db import StoreUnusable
    from gateway.store.walcheck import refuse_lost_commits

    path = cfg.db_path
    if not (path.exists() and path.stat().st_size > 0):
        return
    refuse_root_in_service_dir(cfg)
    use_database(cfg)
    try:
        refuse_lost_commits(path, time.time())
    except StoreUnusable as exc:
        raise CliError(str(exc), EXIT_CONFIG) from exc
    try:
        refuse_unsafe_database(path)  # a planted link is never read; open_store names it
    except OSError:
        return
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=LOCK_WAIT_SECONDS)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseLocked(path, holders(path, besides), advice) from exc
    except sqlite3.Error:
        return


def holders(db: Path, besides: int | None = None) -> list[int]:
    """The pids holding a lock on the database or its -shm (not a waiter's), this process and
    `besides` left out; empty where /proc/locks cannot be read (not Linux)."""
    from gateway.store.proclocks import lock_entries

    found = {int(pid) for pid, waiting in lock_entries(db) or () if not waiting and pid.isdigit()}
    return sorted(found - {os.getpid(), besides})


def _program(pid: int) -> str:
    """`, sqlite3` for the process `pid`: what to look for in `ps`; empty where it cannot be read."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return f", {name}" if name else ""


def print_unread(database: Path | None, error: str, state: str, daemon: dict[str, Any] | None = None) -> None:
    """The object `status --json` prints where it cannot read the database (`database` None: there
    is none): a check parsing stdout found nothing there at all. stderr says why too. `daemon`: a
    running daemon's (`daemon_json`), with the version it runs (a newer one's database is why)."""
    unread = {
        "database": None if database is None else str(database),
        "error": error,
        "daemon": daemon or {"state": state},
    }
    print(json.dumps(unread, indent=2))


STATE_UNKNOWN = "unknown: this user cannot read the daemon's lock and status files"


def refuse_unreadable(cfg: Config, as_json: bool) -> None:
    """CliError where this user may not read the database the daemon's user owns, after `status
    --json` printed its object: exit 1 (status itself fails, as its help says), 3 where the daemon's
    lock, readable, says it is not running.

    A monitoring user's status under a daemon running as root (its database 0600) said "not running",
    exit 3, and told the user to move the live database aside, as for a file another user planted; with
    the state directory closed to it, a bare "smsgw.db: Permission denied" and no JSON. Whether the
    daemon runs is told where its lock and status files can be read, else "unknown"."""
    if os.geteuid() == 0 or (why := _unreadable(cfg)) is None:
        return
    from gateway.statusfile import STATUS_FILE, read_status

    holder = lock_holder(cfg)
    status = read_status(cfg.state_dir)
    if (
        holder not in (UNKNOWN, None, 0)
        and status is None
        and (said := unreadable_status(cfg.state_dir, holder))
    ):
        state = said  # its lock tells that it runs, only its status is this user's to read
    elif holder == UNKNOWN or (status is None and _exists(cfg.state_dir / STATUS_FILE) is not False):
        state = STATE_UNKNOWN
    else:
        state = daemon_now(cfg, status, time.time(), holder) or "running"
    if as_json:
        print_unread(cfg.db_path, why, state)
    code = 3 if state.startswith("not running") else 1  # 3 only where its lock says so (`daemon_state`)
    raise CliError(why if state == "running" else f"{why} (daemon {state})", code)


def _exists(path: Path) -> bool | None:
    """Whether `path` exists, None where this user cannot tell (its directory is closed to it)."""
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    return True


def _unreadable(cfg: Config) -> str | None:
    """Why this user cannot read the database: the state directory is closed to it, or the file is
    the service's user's (its owner owns the state directory too). None where it can, and where the
    file is no service's (a link, another user's file in this user's directory): the open refuses
    that as planted, to be moved aside."""
    from gateway.filemodes import mode_text, owner_name
    from gateway.sudoline import again_as

    me = owner_name(os.geteuid())
    path = cfg.db_path
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    except PermissionError:
        try:
            held = cfg.state_dir.stat()
        except OSError:
            return f"cannot read the database {path}: user {me} may not enter the directories above it"
        owner = owner_name(held.st_uid)
        return (
            f"cannot read the database {path}: state_dir {cfg.state_dir} ({mode_text(held.st_mode)}, user"
            f" {owner}) is closed to user {me}; run status as {owner} (`{again_as(owner)}`)"
        )
    except OSError:
        return None
    try:
        dir_owner = cfg.state_dir.stat().st_uid
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_uid == os.geteuid() or st.st_uid != dir_owner:
        return None
    owner = owner_name(st.st_uid)
    return (
        f"cannot read the database {path}: it belongs to user {owner}, who runs the daemon, and smsgw"
        f" opens a database only as its owner; run status as {owner} (`{again_as(owner)}`)"
    )
