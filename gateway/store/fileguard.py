"""Whether what the store writes still counts, for the group commit (`gateway.store.commit`).

A database deleted or replaced (by a backup, say) underneath an open connection keeps working, but
into a file no one will open again: every write from then on would be answered as done and lost.
A failed WAL fsync is as bad: the kernel reports a write-back error once and may drop the pages it
could not write, so a later fsync that succeeds proves nothing about them, while their rows stay
committed and visible (a client's retry of that mail would hear "already accepted"). Once either is
seen, every write fails with `StoreReplaced` and `on_replaced` is called, so that the daemon stops
and its restart opens the file in place and recovers what did reach the disk.

A file deleted (not replaced) leaves nothing in place to restart on: what the connection still
reads of it is first copied beside it (`gateway.store.rescue`), and the next start refuses to
create an empty database there (`gateway.store.marker`) until an admin restores that copy.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from gateway.store.rescue import rescue_copy

log = structlog.get_logger(__name__)

UNSYNCED = "not made durable (a WAL fsync failed)"


class StoreError(Exception):
    """The database cannot be used; the message says which file and what to do."""


class StoreUnusable(StoreError):
    """The database can never be used as it is (damaged, not smsgw's, newer than this smsgw, not
    writable by this user): a restart cannot help until an admin acts. Not a disk that is full or
    a file locked for now, which pass."""


class StoreReplaced(StoreError):
    """The database file was deleted or replaced while open, or its WAL was not made durable:
    nothing written now would survive."""


def file_id(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def refuse_other_names(path: Path) -> None:
    """StoreUnusable where the database file has another name (a hard link) besides `path`
    (`gateway.filemodes.other_names`): the daemon's start and every command's open refuse it. No lock
    on the file itself: closing any descriptor of it would drop SQLite's own POSIX locks."""
    from gateway.filemodes import other_names  # here: that module imports this one's error

    try:
        st = os.lstat(path)
    except OSError:
        return  # none yet, or not examinable: the open that follows says what is wrong
    if (why := other_names(path, st)) is not None:
        raise StoreUnusable(why)


class FileGuard:
    """`replaced`: why nothing written from now on would count, once detected (else None)."""

    path: Path
    conn: sqlite3.Connection

    def _init_guard(self, identity: tuple[int, int]) -> None:
        self._identity = identity
        self._wal_identity: tuple[int, int] | None = None
        self.replaced: str | None = None
        self.on_replaced: Callable[[], None] = lambda: None
        self.clock: Callable[[], float] = time.time  # the store's clock: it names the rescued copy
        self.rescued: Path | None = None  # the copy made of a deleted database
        self._guard_off = False  # our own close: see `stop_guard`

    def check_file(self) -> bool:
        """Whether the path (and its WAL) still name the files the connection has open."""
        if self.replaced is not None:
            return False
        if self._guard_off:
            return True
        problem = None
        try:
            if file_id(os.stat(self.path)) != self._identity:
                problem = "replaced"
            elif self._wal_identity not in (None, file_id(os.stat(f"{self.path}-wal"))):
                problem = "WAL file replaced"
        except FileNotFoundError:
            problem = "deleted"
        except OSError as exc:  # cannot tell: keep going, the next check may
            log.warning("store.file_check_failed", path=str(self.path), error=str(exc))
        if problem is None:
            return True
        rescue_failed = problem == "deleted" and not self._rescue()
        self._give_up(
            problem,
            "store.file_replaced",
            how=problem,
            note="refusing mail and stopping; mail acknowledged before now was in the old file"
            + (f", copied to {self.rescued}" if self.rescued else "")
            + ("; the copy failed" if rescue_failed else ""),
        )
        return False

    def stop_guard(self) -> None:
        """The daemon closes the connection: a clean close checkpoints the WAL and SQLite deletes it,
        so a WAL fsync answered after that (a write of a start that failed) would find no WAL at the
        path and take the database for deleted, with nothing left to copy it out of. What was
        committed before the close is in the file the close checkpointed into; nothing is judged after."""
        self._guard_off = True

    def _rescue(self) -> bool:
        """Copy the deleted file out of the connection (`rescue_copy`) before the daemon lets go of it."""
        try:
            self.rescued = rescue_copy(self.conn, self.path, self.clock())
        except (sqlite3.Error, OSError) as exc:
            log.critical(
                "store.rescue_failed",
                path=str(self.path),
                error=str(exc),
                note="the deleted database could not be copied (disk full?): restore the last backup",
            )
            return False
        log.critical(
            "store.rescued",
            path=str(self.path),
            copy=str(self.rescued),
            note=f"the deleted database with every commit; smsgw stops: restore this copy to {self.path}",
        )
        return True

    def _unsynced(self, exc: Exception, waiting: int) -> None:
        """A WAL fsync failed: refuse every write from now on and have the daemon stop."""
        self._give_up(
            UNSYNCED,
            "store.fsync_failed",
            error=str(exc),
            waiting=waiting,
            note="refusing mail and stopping; a restart recovers what reached the disk",
        )

    def _give_up(self, problem: str, event: str, **fields: Any) -> None:
        if self.replaced is None:
            self.replaced = problem
            log.critical(event, path=str(self.path), **fields)
            self.on_replaced()

    def replaced_error(self) -> StoreReplaced:
        again = "recovers what reached the disk" if self.replaced == UNSYNCED else "opens the file in place"
        if self.replaced == "deleted":
            again = (
                f"does not start on an empty one; restore the rescued copy {self.rescued}"
                if self.rescued
                else "does not start on an empty one; the copy of it failed: restore the last backup"
            ) + f" to {self.path}"
        return StoreReplaced(
            f"database {self.path} was {self.replaced} while the daemon had it open; "
            f"stopped so that a restart {again}"
        )

    def _discard_wal(self) -> None:
        """Remove our WAL (and its index) left at the path of a database deleted or replaced.

        SQLite keeps them when the database file is gone from under the connection, and the next
        open would replay the old file's pages onto whatever file is now at the path: a restored
        backup would silently take in pages of another database. Only files that are still ours go.
        The WAL of a deleted database that could not be rescued holds its newest commits: it is moved
        aside instead, out of SQLite's way, for whoever can make use of it.
        """
        wal = Path(f"{self.path}-wal")
        kept = None
        try:
            if self._wal_identity is None or file_id(os.stat(wal)) != self._wal_identity:
                return
            if self.replaced == "deleted" and self.rescued is None:
                stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
                kept = wal.with_name(f"{wal.name}.unrescued-{stamp}")
                wal.rename(kept)
            else:
                wal.unlink()
            Path(f"{self.path}-shm").unlink(missing_ok=True)
        except OSError as exc:
            log.error("store.wal_discard_failed", path=str(wal), error=str(exc))
            return
        if kept is not None:
            log.critical("store.wal_kept", path=str(wal), moved_to=str(kept))
        else:
            log.warning("store.wal_discarded", path=str(wal))
