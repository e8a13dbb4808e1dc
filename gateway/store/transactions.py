"""The transactions of `Db`'s one connection: atomic units, savepoints inside them, work run once
one is committed, and the flag that tells the next start this process committed to the WAL.

Apart from gateway/store/db.py, which opens, serves and closes the file, because these are what
the repositories and the group commit (`GroupCommit`) lean on for every write; they sit on the
group commit's write path, whose durable answer (`_start_sync`) they hand committed work to.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import structlog

from gateway.store import walcheck
from gateway.store.commit import GroupCommit, _run_callbacks

log = structlog.get_logger(__name__)

# A flag that could not be written (disk full) is tried again after this, not at every commit, so a
# busy daemon neither spends its commits on it nor fills the log with the same warning.
WAL_FLAG_RETRY_SECONDS = 60.0


class Transactions(GroupCommit):
    """`Db`'s transactions, over the group commit that makes their writes durable."""

    writes_only_through_write: bool
    _wal_noted: bool
    _wal_flag_retry_at: float

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside the open transaction, a part that an exception undoes alone (its rows and its
        after-commit callbacks), so that the rest of the write can go on and commit."""
        conn = self.conn
        if not conn.in_transaction:
            raise RuntimeError("savepoint() needs an open transaction")
        mark = len(self._after)
        conn.execute("SAVEPOINT guarded")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # else SQLite rolled the whole transaction back: the caller hears it
                conn.execute("ROLLBACK TO guarded")
                conn.execute("RELEASE guarded")
            del self._after[mark:]
            raise
        conn.execute("RELEASE guarded")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One atomic unit; nested use joins the outer transaction.

        Joining is the daemon's every case (its writes run inside the group commit's transaction):
        a plain context manager for it, not a generator's, which cost several times as much."""
        conn = self.conn
        if conn.in_transaction:
            return _Joined(conn)
        return self._transaction(conn)

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        if self.writes_only_through_write and not self._flushing:
            raise RuntimeError(
                f"a transaction on {self.path} was opened outside write(); in the daemon every write goes "
                "through write(), so that it is grouped and on disk before anyone is told it is done"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
            self._note_commit()
        except BaseException:
            self._after.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        callbacks, self._after = self._after, []
        self._committed(callbacks)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the open transaction is committed (and fsynced, with group fsync).

        Dropped if the transaction (or the `write()` piece that registered it) rolls back; the same
        callback registered twice in one transaction runs once.
        """
        if not self.conn.in_transaction:
            raise RuntimeError("after_commit() needs an open transaction")
        if callback not in self._after:
            self._after.append(callback)

    def _note_commit(self) -> None:
        """After the first COMMIT of this connection, before anyone hears of it: the flag that makes
        the next start miss no commit of the WAL (`walcheck`). Failing (disk full), the commit still
        stands; only the check after a crash has less to go by, which is said."""
        if self._wal_noted:
            return
        try:
            # A COMMIT that changed nothing writes no frame: after a clean stop (the WAL cut to 0
            # bytes) there is nothing to lose yet, and a flag over an empty WAL made the start after a
            # kill -9 in the first second refuse to run, "commits lost", until an admin's accept-wal-loss.
            if os.stat(f"{self.path}-wal").st_size == 0:
                return
        except FileNotFoundError:
            return  # (a database not in WAL mode, or not yet: nothing of it in a WAL either)
        now = self.clock()
        # Failed a moment ago: not again at every commit. (A clock stepped back past the failure
        # tries at once rather than waiting out the step.)
        if self._wal_flag_retry_at - WAL_FLAG_RETRY_SECONDS <= now < self._wal_flag_retry_at:
            return
        try:
            walcheck.note_commit(self.path, now)
        except OSError as exc:
            self._wal_flag_retry_at = now + WAL_FLAG_RETRY_SECONDS
            log.warning(
                "store.wal_flag_failed",
                path=str(self.path),
                error=exc.strerror or str(exc),
                retry_seconds=WAL_FLAG_RETRY_SECONDS,
            )
            return
        self._wal_noted = True

    def _committed(self, callbacks: list[Callable[[], None]]) -> None:
        if not callbacks:
            return
        if self._wal_fd is None:
            _run_callbacks(callbacks)
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (startup, tools): make it durable here, then tell
            os.fsync(self._wal_fd)
            _run_callbacks(callbacks)
            return
        self._sync_callbacks.extend(callbacks)
        self._start_sync()


class _Joined:
    """A transaction that joins the open one: it neither commits nor rolls back; an exception
    goes on to whoever opened the outer one."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None
