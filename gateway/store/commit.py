"""Group commit for `Db`: batches of writes per loop turn, fsync before the answer, lock and file guards.

Each `write()` piece joins the next shared transaction; its caller is answered only after that
transaction is committed, its WAL fsynced, and the path found still naming the file we wrote (a
database deleted or replaced underneath us, or a failed WAL fsync, fails every write from then on
with `StoreReplaced`: gateway/store/fileguard.py). The loop never waits on the database for long: a
batch that finds it locked by another process is retried after a short asynchronous pause, and its
callers give up with `StoreBusy` after a bound. A flush runs a bounded number of pieces, interactive
ones (an SMTP client waiting) first, so that a flood of receipts cannot hold a client behind it.

Writes the disk refuses (full, I/O errors) or a damaged file fails (`gateway.store.trouble.damaged`)
are remembered for `/healthz` and the status file (`trouble()`), and logged at once, then counted in a
line per kind every 30 s (`gateway.bitelog.FaultLog`); on a full disk a TRUNCATE may give room back first.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from gateway.bitelog import FaultLog
from gateway.store.checkpoint import DEFAULT_LIMIT_BYTES, Checkpointer, CheckpointScheduling
from gateway.store.fileguard import UNSYNCED, FileGuard, StoreError, StoreReplaced
from gateway.store.trouble import WriteTrouble, damaged
from gateway.store.walsync import WalSync
from gateway.store.writehold import HeldWrites

__all__ = ["UNSYNCED", "GroupCommit", "StoreBusy", "StoreError", "StoreReplaced"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# The serving daemon's lock wait blocks the loop for at most SERVING_BUSY_MS per attempt; the
# attempts are retried asynchronously, BUSY_RETRY_* apart.
SERVING_BUSY_MS = 5
BUSY_RETRY_MIN_SECONDS = 0.01
BUSY_RETRY_MAX_SECONDS = 0.2
# How long a write waits for a database locked by another process before its caller hears
# `StoreBusy`: an SMTP client gets `451` after a few seconds; background work waits as it always did.
INTERACTIVE_PATIENCE_SECONDS = 5.0
BACKGROUND_PATIENCE_SECONDS = 30.0
# Pieces per flush (one event loop turn): other callbacks (SMTP sessions) run between flushes.
MAX_PIECES_PER_FLUSH = 256
STORE_FAULT_LOG_SECONDS = 30.0  # a line a second per kind was 400 a minute beside the relay's (module doc)


class StoreBusy(sqlite3.OperationalError):
    """Another process held the database's write lock for longer than the caller can wait."""


# SQLite's primary result codes that tell of the disk or the database, not of the data.
_TRANSIENT_CODES = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY}
    | {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN}
)


def store_trouble(exc: BaseException) -> bool:
    """A write failed for the disk's or another process's sake (full, locked past the wait, an I/O
    error SQLite survived), not for its data: the same write may succeed later."""
    if isinstance(exc, StoreBusy | OSError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _TRANSIENT_CODES


@dataclass(slots=True)
class _Pending:
    work: Callable[[], Any]
    future: asyncio.Future[Any]
    interactive: bool
    deadline: float  # time.monotonic() after which a locked database fails this piece
    replayable: bool = False  # may run twice: its only effects are in the transaction (and logs)
    retried: bool = False  # ran once already, in a batch a full disk refused (`_retry_after_checkpoint`)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class GroupCommit(CheckpointScheduling, FileGuard, HeldWrites):
    """The write path of `Db` (which provides the connection, transactions and after-commit hooks)."""

    path: Path
    conn: sqlite3.Connection
    _after: list[Callable[[], None]]
    _flushing: bool
    _wal_fd: int | None
    _wal_sync: WalSync | None

    def _check_thread(self) -> None:
        raise NotImplementedError

    def _committed(self, callbacks: list[Callable[[], None]]) -> None:
        raise NotImplementedError

    def _note_commit(self) -> None:
        raise NotImplementedError

    def _init_commit(self, identity: tuple[int, int]) -> None:
        self._pending: list[_Pending] = []  # background work, first come first served
        self._urgent: list[_Pending] = []  # interactive work: flushed ahead of the background
        self._flush_scheduled = False
        self._busy_delay = 0.0  # the current back-off while another process holds the lock
        self._syncing: list[tuple[_Pending, Any]] = []  # committed, waiting for the WAL fsync
        self._sync_callbacks: list[Callable[[], None]] = []
        self._sync_running = False  # an fsync is under way in the fsync thread
        self._holds = []  # the pieces of the batch under way that time their hold (`HeldWrites.timed`)
        self._init_guard(identity)
        self.interactive_patience = INTERACTIVE_PATIENCE_SECONDS
        self.background_patience = BACKGROUND_PATIENCE_SECONDS
        # WAL checkpoints in a thread of their own (serving daemon only; see gateway/store/checkpoint.py).
        self._checkpointer: Checkpointer | None = None
        self.wal_limit = DEFAULT_LIMIT_BYTES
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._writes_held = False  # a TRUNCATE checkpoint runs (or is next): batches wait for it
        self._truncate_next = False  # the WAL passed the hard bound during a passive checkpoint
        self._trouble = WriteTrouble()
        self._fault_log = FaultLog(log, interval=STORE_FAULT_LOG_SECONDS)  # a full disk fails every write

    # ---- group commit -------------------------------------------------------------------------

    async def write(self, work: Callable[[], T], *, interactive: bool = False, replayable: bool = False) -> T:
        """Run `work` in the next shared transaction; return its result once that has committed.

        Everything that wants a commit within one turn of the event loop (accepts, submit answers,
        DLRs) shares one transaction and so one fsync; each piece runs in its own savepoint, so a
        failing piece is rolled back alone and only its caller sees the error. `interactive` work
        (a client waits for the answer) goes ahead of background work and gives up sooner
        (`StoreBusy`) when another process keeps the database locked.
        """
        return await self.submit(work, interactive=interactive, replayable=replayable)

    def submit(
        self, work: Callable[[], T], *, interactive: bool = False, replayable: bool = False
    ) -> asyncio.Future[T]:
        """`write` for callers that answer from a done callback: no task needs a loop turn to start."""
        self._check_thread()
        if self.replaced is not None:
            raise self.replaced_error()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        patience = self.interactive_patience if interactive else self.background_patience
        item = _Pending(work, fut, interactive, time.monotonic() + patience, replayable)
        (self._urgent if interactive else self._pending).append(item)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _take(self) -> list[_Pending]:
        room = MAX_PIECES_PER_FLUSH
        batch, self._urgent = self._urgent[:room], self._urgent[room:]
        room -= len(batch)
        if room > 0:
            batch += self._pending[:room]
            del self._pending[:room]
        return batch

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writes_held:
            return  # the checkpoint flushes what waits when it is done
        if self._sync_running:
            # What arrives during an fsync cannot be answered before the next one anyway: it waits
            # and goes in one transaction when the fsync is done (`_synced`), instead of one small
            # transaction per loop turn (each with its BEGIN, COMMIT and WAL frames).
            return
        batch = self._take()
        try:
            if batch:
                self._run_batch(batch)
        except BaseException as exc:
            # Whatever escaped the batch (a bug, a piece raising what is not an Exception): its
            # callers must hear it rather than wait forever, and no transaction may stay open.
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            self._after.clear()
            _fail(batch, exc if isinstance(exc, Exception) else StoreError(f"write interrupted: {exc!r}"))
            raise
        finally:
            if (self._pending or self._urgent) and not self._flush_scheduled:
                # The rest in the next turn, after the callbacks (SMTP sessions) waiting for it.
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    def _run_batch(self, batch: list[_Pending], *, guarded: bool = False) -> None:
        """One transaction for `batch`; a failing piece is rolled back alone and only its caller hears.

        Savepoints cost two statements per piece, so a piece runs without one while rolling back
        the whole transaction would undo nothing but pieces that may run again: the first piece of
        the transaction (a batch of one needs no savepoint at all), and `replayable` pieces while
        no other piece has run before them. When such a piece fails, the transaction is rolled
        back; the first piece fails alone and the rest goes on in a new transaction, or the batch
        runs again with a savepoint per piece (`guarded`).
        """
        if self.replaced is not None:
            _fail(batch, self.replaced_error())
            return
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # also a corrupt file (DatabaseError) or a closed connection
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                self._locked(batch)
            else:
                self._commit_failed(exc, len(batch))
                _fail(batch, exc)
            return
        self._busy_delay = 0.0
        results: list[tuple[_Pending, Any]] = []
        self._flushing = True
        bare = not guarded  # no piece that may not run twice has run in this transaction yet
        undone: tuple[int, Exception] | None = None  # a piece without savepoint failed: all rolled back
        counted: Exception | None = None  # a failed piece, counted as trouble, that ended it all
        try:
            for index, item in enumerate(batch):
                savepoint = not (bare and (item.replayable or index == 0))
                if savepoint:
                    conn.execute("SAVEPOINT one")
                mark = len(self._after)
                try:
                    res = item.work()
                except Exception as exc:
                    if _disk_trouble(exc) or damaged(exc):
                        self._trouble.failed(exc)
                        counted = exc
                    elif item.interactive and self._trouble.suspect(exc):
                        counted = exc
                    if not conn.in_transaction:
                        # SQLite itself rolled the whole transaction back (disk full, I/O
                        # error): every piece of the batch is lost, so every caller must hear it.
                        raise
                    if not savepoint:
                        conn.execute("ROLLBACK")
                        self._after.clear()
                        undone = (index, exc)
                        break
                    conn.execute("ROLLBACK TO one")
                    del self._after[mark:]
                    results.append((item, exc))
                else:
                    results.append((item, res))
                if savepoint:
                    conn.execute("RELEASE one")
                if not item.replayable:
                    bare = False
            else:
                committing = time.perf_counter()
                conn.execute("COMMIT")
                self._note_commit()
                self._held(time.perf_counter() - committing)
        except Exception as exc:  # the commit itself failed (disk full, I/O error)
            self._after.clear()
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._commit_failed(exc, len(batch), counted=exc is counted)
            _fail(self._retry_after_checkpoint(batch, exc), exc)  # a full disk: a WAL TRUNCATE first
            return
        finally:
            self._flushing = False
        if undone is not None:
            index, exc = undone
            if index == 0:
                _fail(batch[:1], exc)
                if len(batch) > 1:
                    self._run_batch(batch[1:])
            else:  # everything run so far may run again, this time piece by piece
                self._run_batch(batch, guarded=True)
            return
        callbacks, self._after = self._after, []
        if self._wal_fd is None:
            self._committed(callbacks)
            if not self.check_file():
                _fail(batch, self.replaced_error())
                return
            _settle(results)
            return
        self._syncing.extend(results)  # before the callbacks: one fsync for both
        self._committed(callbacks)
        self._start_sync()

    # ---- failures -----------------------------------------------------------------------------

    def _commit_failed(self, exc: BaseException, batch: int, *, counted: bool = False) -> None:
        """A transaction failed whole; `counted`: its failing piece has been counted already."""
        failures = self._trouble.failures if counted else self._trouble.failed(exc)
        self._fault_log.error("store.commit_failed", exc, error=str(exc), batch=batch, failures=failures)

    def trouble(self) -> dict[str, Any] | None:
        """The writes the store has been refusing lately; None when it writes (`WriteTrouble`)."""
        return self._trouble.report()

    def lock_waits(self) -> tuple[bool, bool]:
        """(retrying since another process's write lock was found taken, writes waiting meanwhile)."""
        busy = bool(self._busy_delay)
        return busy, busy and bool(self._pending or self._urgent or self._flush_scheduled)

    def _locked(self, batch: list[_Pending]) -> None:
        """Another process holds the write lock: try again shortly, without blocking the loop."""
        now = time.monotonic()
        expired = [item for item in batch if item.deadline <= now]
        waiting = [item for item in batch if item.deadline > now]
        busy = StoreBusy(f"database {self.path} is locked by another process")
        if self._busy_delay == 0.0 or expired:  # its first line, then a count: one a give-up was 105 in 30 s
            self._fault_log.warning("store.busy", busy, error=str(busy), gave_up=len(expired))
        _fail(expired, busy)
        self._urgent[:0] = [item for item in waiting if item.interactive]
        self._pending[:0] = [item for item in waiting if not item.interactive]
        self._busy_delay = min(max(self._busy_delay * 2, BUSY_RETRY_MIN_SECONDS), BUSY_RETRY_MAX_SECONDS)
        self._flush_scheduled = True  # writes arriving meanwhile wait for this retry
        asyncio.get_running_loop().call_later(self._busy_delay, self._flush)

    def _start_sync(self) -> None:
        """fsync the WAL for every batch committed so far (one fsync at a time), then answer their callers.

        The fsync thread hands its outcome straight back to the loop (one loop turn), not through
        a task and wrapped futures: each turn a busy loop adds here is latency for every client.
        """
        if self._sync_running or not (self._syncing or self._sync_callbacks):
            return
        waiting, self._syncing = self._syncing, []
        callbacks, self._sync_callbacks = self._sync_callbacks, []
        assert self._wal_sync is not None
        self._sync_running = True
        self._wal_sync.request(asyncio.get_running_loop(), partial(self._synced, waiting, callbacks))

    def _synced(
        self, waiting: list[tuple[_Pending, Any]], callbacks: list[Callable[[], None]], exc: Exception | None
    ) -> None:
        self._sync_running = False
        try:
            if exc is not None:
                self._unsynced(exc, len(waiting))
                _fail([item for item, _res in waiting], self.replaced_error())
            # Last look before anyone hears "done": the fsync only counts if it was our file.
            elif not self.check_file():
                _fail([item for item, _res in waiting], self.replaced_error())
            else:
                _settle(waiting)
                _run_callbacks(callbacks)
                self._maybe_checkpoint()
        finally:
            if (self._pending or self._urgent) and not (self._writes_held or self._flush_scheduled):
                self._flush()  # what waited for this fsync: one batch, and its fsync starts
            self._start_sync()

    async def drain(self) -> None:
        """Wait until every write handed to `write()` is committed and on disk (or failed)."""
        while self._pending or self._urgent or self._flush_scheduled or self._sync_running:
            waiting = self._busy_delay or self._sync_running or self._writes_held  # not on this loop turn
            await asyncio.sleep(BUSY_RETRY_MIN_SECONDS if waiting else 0)


def _disk_trouble(exc: BaseException) -> bool:
    """A failure of the disk or the database file (full, I/O error, read-only), not a lock held by
    another process (`StoreBusy`, waited out elsewhere) nor a piece's own data."""
    if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
        return False
    return store_trouble(exc)


def _settle(results: list[tuple[_Pending, Any]]) -> None:
    for item, res in results:
        if item.future.done():
            continue
        if isinstance(res, BaseException):
            item.future.set_exception(res)
        else:
            item.future.set_result(res)


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("store.after_commit_failed")
