"""Writes the disk refuses, remembered: what `/healthz` answers 503 with and `smsgw status` shows.

A run of failures lasts while each comes within `TROUBLE_RECENT_SECONDS` of the one before. A write
that commits meanwhile does not end it: on a full disk, writes that need no new page (a receipt's
update, the /healthz heartbeat) still commit while every mail is refused.

A database file that contradicts itself is such trouble too (`damaged`): a backup copied over the
file of the running daemon left indexes that disagreed with their tables and rows that referred to
rows no longer there, and every mail failed with an IntegrityError while /healthz answered 200.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from gateway.bitelog import failure_kind

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
