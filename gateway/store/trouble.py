"""Writes the disk refuses, remembered: what `/healthz` answers 503 with and `smsgw status` shows.

A run of failures lasts while each comes within `TROUBLE_RECENT_SECONDS` of the one before. A write
that commits meanwhile does not end it: on a full disk, writes that need no new page (a receipt's
update, the /healthz heartbeat) still commit while every mail is refused.

A database file that contradicts itself is such trouble too (`damaged`): a backup copied over the
file of the running daemon left indexes that disagreed with their tables and rows that referred to
rows no longer there, and every mail failed with an IntegrityError while /healthz answered 200.
"""

from __future__ import annotations

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
        """{free_bytes, total_bytes, floor_bytes, low}; None when statvfs fails (no such directory)."""
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
        self._report = {
            "free_bytes": free,
            "total_bytes": total,
            "floor_bytes": space_floor(total),
            "low": low,
        }
        if low and not self._low and (self._warned is None or now - self._warned >= SPACE_WARN_SECONDS):
            self._warned = now
            log.warning(
                "store.disk_low",
                path=str(self.path),
                free_bytes=free,
                floor_bytes=space_floor(total),
                note="new mail is refused (452) once the disk is full: free space on it or grow it",
            )
        elif not low and self._low:
            log.info("store.disk_ok", path=str(self.path), free_bytes=free)
        self._low = low
        return self._report


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
