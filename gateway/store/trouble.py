"""Writes the disk refuses, remembered: what `/healthz` answers 503 with and `smsgw status` shows.

A run of failures lasts while each comes within `TROUBLE_RECENT_SECONDS` of the one before. A write
that commits meanwhile does not end it: on a full disk, writes that need no new page (a receipt's
update, the /healthz heartbeat) still commit while every mail is refused.

A database file that contradicts itself is such trouble too (`damaged`): a backup copied over the
file of the running daemon left indexes that disagreed with their tables and rows that referred to
rows no longer there, and every mail failed with an IntegrityError while /healthz answered 200.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.bitelog import failure_kind

log = structlog.get_logger(__name__)

TROUBLE_RECENT_SECONDS = 30.0
SUSPECT_RUN = 3  # clients' writes failing a constraint within TROUBLE_RECENT_SECONDS that make trouble


@dataclass(slots=True)
class _Run:
    error: str  # the latest failure's words
    since: float  # time.monotonic() of the first failure of the run
    last: float  # and of the latest
    failures: int = 0


class WriteTrouble:
    """The current run of failed writes of one store (`GroupCommit` counts them)."""

    def __init__(self) -> None:
        self._run: _Run | None = None
        self._suspects: list[float] = []  # monotonic times of clients' constraint failures (`suspect`)

    @property
    def failures(self) -> int:
        return self._run.failures if self._run is not None else 0

    def failed(self, exc: BaseException) -> int:
        """Count a write the store refused into the current run (or start one); the run's count."""
        now = time.monotonic()
        run = self._run
        if run is None or now - run.last > TROUBLE_RECENT_SECONDS:
            run = self._run = _Run(_words(exc), now, now)
        run.error, run.last = _words(exc), now
        run.failures += 1
        return run.failures

    def suspect(self, exc: BaseException) -> bool:
        """A client's write (an accepted mail, the panel) that failed a constraint: counted into the
        run, and True, from the `SUSPECT_RUN`th within `TROUBLE_RECENT_SECONDS`.

        Such writes insert rows with new keys referring to the accounts and users the daemon read,
        so a run of them says the file is not what the daemon read (a backup copied under it, whose
        indexes disagree with their tables: every mail failed). One alone is a race: a user removed
        while their mail's DATA was arriving fails that mail's rows, and was 30 s of /healthz 503."""
        if not isinstance(exc, sqlite3.IntegrityError):
            return False
        now = time.monotonic()
        self._suspects = [t for t in self._suspects if now - t <= TROUBLE_RECENT_SECONDS] + [now]
        if len(self._suspects) < SUSPECT_RUN:
            return False
        self.failed(exc)
        return True

    def report(self) -> dict[str, Any] | None:
        """The run while a write failed within TROUBLE_RECENT_SECONDS; None when the store writes."""
        run, now = self._run, time.monotonic()
        if run is None or now - run.last > TROUBLE_RECENT_SECONDS:
            return None
        return {
            "error": run.error,
            "failures": run.failures,
            "for_seconds": round(now - run.since, 1),
            "last_seconds_ago": round(now - run.last, 1),
        }


# SQLite's primary result codes for a file that is not a sound database.
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def damaged(exc: BaseException) -> bool:
    """A write failed because the database file contradicts itself: SQLite's own word for damage
    ("database disk image is malformed", "file is not a database")."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.IntegrityError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGE_CODES
    return "malformed" in str(exc) or "not a database" in str(exc)


def _words(exc: BaseException) -> str:
    """A failure as /healthz and `smsgw status` show it: SQLite's words, or the OS's without the
    file name (/healthz is public)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) if isinstance(exc, sqlite3.Error) else failure_kind(exc)


# The free space under which the state directory counts as nearly full: under LOW_SPACE_BYTES, or
# on a filesystem smaller than 6.4 GB under LOW_SPACE_FRACTION of it (a 20 MB tmpfs would otherwise
# always be "full"). A full disk refused every mail with 452 while /healthz, whose heartbeat still
# found room in a page, said ok, and nothing warned while it filled.
LOW_SPACE_BYTES = 64 * 1024 * 1024
LOW_SPACE_FRACTION = 0.01
SPACE_LOOK_SECONDS = 1.0  # statvfs at most this often: /healthz answers without a login
SPACE_WARN_SECONDS = 60.0  # a warning per crossing, and at most one this often (free space hovering)


def space_floor(total: int) -> int:
    """The free bytes under which a filesystem of `total` bytes counts as nearly full."""
    return int(min(LOW_SPACE_BYTES, total * LOW_SPACE_FRACTION)) if total else LOW_SPACE_BYTES


def space_low(free: int, total: int) -> bool:
    """The decision: too little room left for the store to grow (see LOW_SPACE_BYTES)."""
    return free < space_floor(total)


# The WAL (`gateway.config.Config.db_path`'s) as the disk's look reports it.
WAL_NAME = "smsgw.db-wal"
# A WAL smaller than this is not cut back for space while writes still find room: on a disk kept
# under its floor by other files, each TRUNCATE (writes held for it) then covers a few mails at least.
WAL_SPACE_MIN_BYTES = 256 * 1024
# ... and it is cut back, whatever the floor, once it takes this share of the room left (the rest
# of it with the WAL): on a 3 MB tmpfs the WAL filled the disk at 3 MB, 16 MB being its limit.
WAL_SPACE_SHARE = 3


def disk_full(exc: BaseException) -> bool:
    """A write failed for want of room: SQLITE_FULL ("database or disk is full") or ENOSPC."""
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == sqlite3.SQLITE_FULL


def wal_crowding(state_dir: Any, wal_bytes: int, *, full: bool = False) -> dict[str, Any] | None:
    """Why, and the room left, when a WAL of `wal_bytes` should be cut back to give the disk room.

    It should once a write found the disk full (`full`: any WAL at all), once it takes a
    `WAL_SPACE_SHARE`th of the room left with it, or (past `WAL_SPACE_MIN_BYTES`) while the disk is
    under its floor. The WAL's pages are written into the database file first, which grows by the
    pages new to it: few once a checkpoint has run (the WAL holds the same pages written over and
    over), but all of a database never checkpointed yet (a fresh one is its WAL). Cut back early,
    the WAL leaves that room; a disk filled first refuses mail (452) until space is freed."""
    if wal_bytes <= 0 or (wal_bytes < WAL_SPACE_MIN_BYTES and not full):
        return None
    try:
        st = os.statvfs(state_dir)
    except OSError:
        return None
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    if full:
        why = "disk full"
    elif space_low(free, total):
        why = "disk nearly full"
    elif free + wal_bytes < WAL_SPACE_SHARE * wal_bytes:
        why = f"the WAL takes over 1/{WAL_SPACE_SHARE} of the room left"
    else:
        return None
    return {"why": why, "free_bytes": free, "floor_bytes": space_floor(total)}


class DiskSpace:
    """The free space of the filesystem holding the state directory, looked at once a second at
    most, and a warning logged when it falls under the floor (once per crossing, once a minute at
    most), a line when it is back above it."""

    def __init__(self, path: Any, clock: Any = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self._at: float | None = None
        self._report: dict[str, Any] | None = None
        self._low = False
        self._warned: float | None = None

    def look(self) -> dict[str, Any] | None:
        """{free_bytes, total_bytes, floor_bytes, low, wal_bytes}; None when statvfs fails (no such
        directory)."""
        now = self.clock()
        if self._at is not None and now - self._at < SPACE_LOOK_SECONDS:
            return self._report
        self._at = now
        try:
            st = os.statvfs(self.path)
        except OSError:
            self._report = None
            return None
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        low = space_low(free, total)
        try:  # what the daemon may give back itself (`gateway.store.checkpoint`), for the note
            wal = os.stat(os.path.join(self.path, WAL_NAME)).st_size
        except OSError:
            wal = 0
        self._report = {
            "free_bytes": free,
            "total_bytes": total,
            "floor_bytes": space_floor(total),
            "low": low,
            "wal_bytes": wal,
        }
        if low and not self._low and (self._warned is None or now - self._warned >= SPACE_WARN_SECONDS):
            self._warned = now
            log.warning(
                "store.disk_low",
                path=str(self.path),
                free_bytes=free,
                floor_bytes=space_floor(total),
                wal_bytes=wal,
                note="new mail is refused (452) once the disk is full: free space on it or grow it",
            )
        elif not low and self._low:
            log.info("store.disk_ok", path=str(self.path), free_bytes=free)
        self._low = low
        return self._report


def wal_words(disk: dict[str, Any]) -> str:
    """For the disk's note: the WAL, once it takes a tenth of the filesystem (room the daemon can
    give back itself, which "old logs, backups" alone never named)."""
    from gateway.statusfile import size_words

    wal = int(disk.get("wal_bytes") or 0)
    if wal * 10 < int(disk.get("total_bytes") or 0) or not wal:
        return ""
    return (
        f"; the database's WAL ({WAL_NAME}) takes {size_words(wal)} of it: the daemon checkpoints it away"
        " as space runs out (`store.checkpoint` in the log), unless a reader holds it"
    )


_spaces: dict[str, DiskSpace] = {}


def disk_space(path: Any) -> DiskSpace:
    """The one watch of `path` in this process (/healthz, /metrics and the status file share it)."""
    key = str(path)
    if (watch := _spaces.get(key)) is None:
        watch = _spaces[key] = DiskSpace(path)
    return watch


# A lock another process holds for this long (BEGIN EXCLUSIVE in an sqlite3 shell, a backup) is
# shown: by then SMTP clients get 451 (`gateway.store.commit.INTERACTIVE_PATIENCE_SECONDS`).
LOCK_SHOWN_SECONDS = 5.0
# Writes waiting for the lock come and go (each gives up after its patience): a gap this short
# between them is the same lock.
LOCK_GAP_SECONDS = 10.0


class LockWatch:
    """Since when the store's writes wait for a lock another process holds.

    The lock was taken for a hung daemon: the status file stopped (its writer waited on the lock),
    `smsgw status` said "daemon not answering", and the workers logged crashes with tracebacks."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._since: float | None = None  # monotonic
        self._last = 0.0

    def look(self, retrying: bool, waiting: bool) -> float | None:
        """Seconds the lock has held the writes, once over LOCK_SHOWN_SECONDS; None otherwise.

        `retrying`: the store has not got the lock since it first found it taken; `waiting`: writes
        are waiting for it now."""
        now = self.clock()
        if not retrying:
            self._since = None
        elif waiting:
            if self._since is None:
                self._since = now
            self._last = now
        elif self._since is not None and now - self._last > LOCK_GAP_SECONDS:
            self._since = None
        if self._since is None or now - self._since < LOCK_SHOWN_SECONDS:
            return None
        return now - self._since


def store_locked(exc: BaseException) -> bool:
    """A write gave up on a lock another process holds (`StoreBusy`): not a crash of its caller."""
    return any(cls.__name__ == "StoreBusy" for cls in type(exc).__mro__)
