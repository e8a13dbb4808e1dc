"""The database: the one connection (`Db`) and the repositories composed over it (`Store`).

The store is the only hand-off between stages (SMTP intake, dispatcher, DLR/MO handling, mailer).
It runs SQLite in WAL mode with `synchronous=FULL`, so a committed transaction is on disk before
the SMTP `250` that depends on it. The connection belongs to the thread that opened it (the event
loop's, in the daemon); the admin CLI opens its own connection to the same file, which WAL allows
while the daemon runs. Each area's SQL lives in its repository module (queue, mo, accounts,
policy, outbox, admin); what is SQLite-specific stays here.

Accepting mail uses group commit (`gateway/store/commit.py`): requests that arrive while a commit
is being prepared share one transaction (one fsync), and each SMTP session is answered only after
that commit returned and the path was found still naming the file written to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from threading import get_ident
from typing import TYPE_CHECKING, TypeVar

from gateway.filemodes import STATE_DIR_MODE, prepare_private, private_dir
from gateway.store import besidedaemon, marker, sqlitemode, startcheck, walcheck
from gateway.store.accounts import AccountsRepo
from gateway.store.admin import AdminRepo
from gateway.store.cache import SettingsCache
from gateway.store.checkpoint import Checkpointer
from gateway.store.commit import (
    SERVING_BUSY_MS,
    UNSYNCED,
    StoreBusy,
    StoreError,
    StoreReplaced,
)
from gateway.store.fileguard import StoreUnusable, file_id, refuse_other_names
from gateway.store.migrate import migrate
from gateway.store.mo import MoRepo
from gateway.store.opening import open_failure
from gateway.store.outbox import OutboxRepo
from gateway.store.policy import PolicyRepo
from gateway.store.queue import QueueRepo
from gateway.store.records import (
    Acceptance,
    AcceptResult,
    ClaimedPart,
    Finished,
    NewMessage,
    NewPart,
)
from gateway.store.transactions import Transactions
from gateway.store.walsync import WalSync

if TYPE_CHECKING:
    from gateway.startprogress import StartProgress

Clock = Callable[[], float]
T = TypeVar("T")

# Lock waits of the CLI and of start-up, like any SQLite client (the serving daemon: SERVING_BUSY_MS).
BUSY_TIMEOUT_MS = 30_000
PROGRESS_EVERY_OPS = 20_000  # SQLite VM steps between calls of a start's progress handler

# Python's sqlite3 binds an int, float or str parameter directly, but passes None and bytes through
# its adaptation protocol first: with no adapter registered for their type, it looks for
# `PrepareProtocol.__adapt__`, whose AttributeError is built (a formatted message) and dropped, some
# 3,000 instructions per parameter, and the daemon binds some 40 such parameters per mail (NULL
# columns, PDU payloads). An adapter registered for the exact type is found in its table first;
# these two give back the very object, so the same NULL or BLOB is bound. (`{}.get(x)` is None for
# any x; `bytes.__bytes__` returns an exact bytes object itself.) An adapter for int, float, str or
# bytearray would send every parameter through adaptation; one for None or bytes does not.
sqlite3.register_adapter(type(None), {}.get)
sqlite3.register_adapter(bytes, bytes.__bytes__)


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def _close_at_exit(conn: sqlite3.Connection, path: Path) -> None:
    """Close `conn` and let `walcheck` know (at `Db.close`, at the exit of a process that did not
    call it, or when the `Db` is collected)."""
    try:
        conn.close()
    except sqlite3.ProgrammingError:  # another thread's connection: SQLite closes it, the flag stays
        return
    walcheck.note_closed(path)


class Db(Transactions):
    """The one connection, its transactions and the group commit; usable only from its own thread.

    A transaction on a connection shared with another thread would take in (and let that thread
    commit or roll back) writes the event loop has already acknowledged, so every use from a
    thread other than the opener raises instead. Everything SQLite-specific (pragmas, file checks,
    WAL fsync, `BEGIN IMMEDIATE`) stays here, in its transactions (`Transactions`) and in their write
    path (`GroupCommit`), so the repositories only speak plain SQL.
    """

    IntegrityError = sqlite3.IntegrityError
    OperationalError = sqlite3.OperationalError

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._owner = threading.get_ident()
        self._owner_name = threading.current_thread().name
        self._init_commit(file_id(os.stat(path)))
        self._after: list[Callable[[], None]] = []  # after-commit callbacks of the open transaction
        self.settings = SettingsCache(lambda: self.conn)
        # Group fsync (see `open`): committed work waiting for the WAL to reach the disk.
        self._wal_fd: int | None = None
        self._wal_sync: WalSync | None = None
        # Once set (the daemon, after its start-up recovery), a transaction outside `write()` raises:
        # a write committed there would be neither grouped nor fsynced before someone relies on it.
        self.writes_only_through_write = False
        self._flushing = False
        self._wal_noted = False  # this process's commits are announced by `walcheck`'s flag
        self._wal_flag_retry_at = float("-inf")  # after a failed write of that flag
        # A process that ends without `close()` (most commands do) still closes cleanly at its exit,
        # flag and all; else the next start would take the WAL SQLite then deleted for a lost one.
        self._at_exit = weakref.finalize(self, _close_at_exit, conn, path)
        self.upgraded_from: int | None = None  # the schema version `open` upgraded the file from
        # The daemon's: (version, when the check last passed), for the record of a clean stop.
        self._stop_record: tuple[str, float] | None = None
        self._own_writes: startcheck.OwnWrites | None = None

    # ---- opening, integrity, migrations -------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        create: bool = True,
        group_fsync: bool = False,
        check: bool = True,
        integrity: bool = True,
        clock: Clock = time.time,
        progress: StartProgress | None = None,
    ) -> Db:
        """Open (and create or migrate) the database.

        Without `group_fsync` every commit is durable when it returns (`synchronous=FULL`): right for
        the CLI and tests. The daemon passes `group_fsync=True`: commits only write the WAL
        (`synchronous=NORMAL`), and `write()` answers its callers after an explicit fsync of the WAL
        file, done in a helper thread. The promise is the same (nothing is acknowledged before it is
        on disk) but the event loop never waits for the disk, and one fsync covers every commit that
        happened while the previous one ran.

        `check=False` skips the integrity check and the migrations, for a process that opens a file
        the daemon has just checked and migrated (an intake worker: reading a large database once
        more at every worker start would delay its first answer by as long). `integrity=False` keeps
        the migrations and skips only the integrity check: for the CLI, whose every command read the
        whole file first (13 s for `smsgw status` on 3.9 GB, longer than a monitoring check waits).

        A missing or empty database is created only where none existed before (`marker`): one that
        was deleted, or a volume that holds its marker but not it, is refused, never made anew.

        The daemon's start passes `progress` (`gateway.startprogress.StartProgress`): told of the check
        and of each migration, and called as SQLite's progress handler meanwhile, so that systemd
        keeps extending the start while the work goes on, however long a large database takes. Its
        check is skipped for a file the daemon stopped cleanly and nothing changed since, checked
        within a week (`startcheck`); its clean `close` records that for the next start.
        """
        existed = path.exists() and path.stat().st_size > 0
        decision = None  # the daemon's start: whether to read the whole file (before anything touches it)
        if check and integrity and progress is not None:
            decision = startcheck.decide(path, clock(), progress.version) if existed else startcheck.NEW_FILE
        if not existed:
            marker.refuse_lost(path)
        if not existed and not create:
            raise StoreError(f"database {path} does not exist; start the daemon once or check --config")
        if existed and check:
            # Before SQLite reads the WAL: it would take a damaged one as ending early, and
            # delete it at its close (`walcheck`).
            walcheck.refuse_lost_commits(path, clock())
        if not path.parent.exists():  # a first CLI command before the daemon's first start
            private_dir(path.parent, STATE_DIR_MODE)
        if check:  # the daemon's start and every command; not an intake worker beside a daemon
            refuse_other_names(path)
        # SQLite creates the file with 0644 less the umask and gives the -wal/-shm the file's mode.
        prepare_private(path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if group_fsync:  # the daemon: each of its connections is used by one thread
            sqlitemode.multi_thread()
        try:
            conn = _connect(path, "NORMAL" if group_fsync else "FULL")
            if not group_fsync:  # a command's: beside the daemon only the daemon's checkpoints write the file
                besidedaemon.quiet_beside_daemon(conn, path)
            decision = startcheck.opened(path, decision) if decision is not None else None
            checking = existed and check and integrity and (decision is None or decision.check)
            if progress is not None and check:
                conn.set_progress_handler(progress.tick, PROGRESS_EVERY_OPS)
                # A lock wait in short turns (`migrate`), each of which extends the start too.
                conn.execute(f"PRAGMA busy_timeout={max(int(progress.every * 1000), 50)}")
                if checking:
                    progress.checking()
            if checking:
                ok = startcheck.quick_check(conn, path, decision)
                if ok != "ok":
                    raise StoreUnusable(
                        f"database {path} failed its integrity check ({ok}); restore it from a backup or "
                        "move it aside after saving it for analysis. Refusing to start with an empty queue."
                    )
            elif decision is not None:
                startcheck.said(path, decision)
        except sqlite3.DatabaseError as exc:
            raise open_failure(path, exc) from exc
        db = cls(conn, path)
        db.clock = clock
        if progress is not None and check and integrity:  # the daemon's: its clean stop is recorded
            checked_at = decision.checked_at if decision is not None else None
            db._stop_record = (progress.version, clock() if checked_at is None else checked_at)
            db._trouble = startcheck.RunTrouble()
        if check:
            db.upgraded_from = migrate(db, existed, progress, BUSY_TIMEOUT_MS / 1000)
            marker.record(path, clock(), created=not existed)
        if progress is not None:
            conn.set_progress_handler(None, 0)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if group_fsync:
            # Checkpoints (which fsync the database file) run in a thread of their own, not in
            # whichever COMMIT of the event loop crosses SQLite's threshold.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={db.wal_limit}")
            db._checkpointer = Checkpointer(path)
            if isinstance(db._trouble, startcheck.RunTrouble):  # the file as its last own write left it
                db._own_writes = startcheck.OwnWrites(path, db._trouble)
                db._checkpointer.writing = db._own_writes.writing
            db._wal_fd = os.open(f"{path}-wal", os.O_RDONLY)
            db._wal_identity = file_id(os.fstat(db._wal_fd))
            db._wal_sync = WalSync(db._wal_fd)
        return db

    # ---- the connection and its transactions --------------------------------------------------

    def _check_thread(self) -> None:
        if get_ident() != self._owner:
            self._wrong_thread()

    def _wrong_thread(self) -> None:
        raise RuntimeError(
            f"the database {self.path} belongs to thread {self._owner_name!r} and was used from "
            f"thread {threading.current_thread().name!r}; run database work on the thread that "
            "opened it (in the daemon: the event loop, through `write()`)"
        )

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, for the repositories; raises when reached from another thread.

        The check is inline (no call of `_check_thread`): every statement of every repository goes
        through here, several dozen per mail."""
        if get_ident() != self._owner:
            self._wrong_thread()
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    # ---- serving: short lock waits, the file still ours -----------------------------------------

    def serve(self) -> None:
        """Start-up is over: writes only through `write()`, and no lock wait blocks the loop for long."""
        self.writes_only_through_write = True
        self.conn.execute(f"PRAGMA busy_timeout={SERVING_BUSY_MS}")

    def limit_wal(self, limit_bytes: int) -> None:
        """Checkpoint once the WAL passes `limit_bytes` (group fsync only; SQLite's default otherwise)."""
        self.wal_limit = limit_bytes
        self.conn.execute(f"PRAGMA journal_size_limit={limit_bytes}")

    def note_damage(self, exc: BaseException) -> None:
        """A read outside `write()` (a panel page) failed: when for a damaged file, the daemon's stop
        records nothing and the next start reads the whole file."""
        if isinstance(self._trouble, startcheck.RunTrouble):
            self._trouble.note_damage(exc)

    def close(self) -> None:
        conn = self.conn
        self.stop_guard()  # a WAL fsync answered after the close finds no WAL: not a deleted database
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._own_writes is not None:  # before the closing checkpoint writes the file
            self._own_writes.look()
        if self._wal_sync is not None:  # before its descriptor closes (and may be reused)
            self._wal_sync.close()
            self._wal_sync = None
        if self._wal_fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._wal_fd)
            os.close(self._wal_fd)
            self._wal_fd = None
        if self.replaced is None and self._wal_noted and not besidedaemon.daemon_runs(self.path):
            # Beside the daemon, its checkpoints do it. One that failed (a full disk) is why the stop
            # vouches for nothing: the WAL it leaves was taken for another process's.
            failed = walcheck.checkpoint_at_close(conn, self.path)
            if failed is not None and isinstance(self._trouble, startcheck.RunTrouble):
                self._trouble.closing_checkpoint_failed(failed)
        conn.close()
        if self.replaced in (None, UNSYNCED):  # after a failed fsync SQLite may still checkpoint at close
            self._at_exit()  # the flag goes once SQLite deleted the WAL: every commit is in the file
        else:
            self._at_exit.detach()
        if self._stop_record is not None:
            version, checked_at = self._stop_record
            tainted = getattr(self._trouble, "tainted", None)  # `startcheck.RunTrouble`'s
            startcheck.record_stop(self.path, self.clock(), checked_at, version, self.replaced, tainted)
        if self.replaced is not None and self.replaced != UNSYNCED:
            # After a failed fsync the WAL is the database's own: it holds every commit since the
            # last checkpoint, and the next start must replay it.
            self._discard_wal()
            # The flag spoke of that WAL, now removed or set aside with what the marker refuses.
            walcheck.flag_path(self.path).unlink(missing_ok=True)


class Store:
    """The repositories over one `Db`: what the daemon, the CLI and the tests hold on to."""

    def __init__(self, db: Db, *, clock: Clock = time.time, zone: tzinfo | None = None) -> None:
        self.db = db
        self.clock = clock
        self.queue = QueueRepo(db, clock)
        self.mo = MoRepo(db, clock)
        self.accounts = AccountsRepo(db, clock, zone)  # `zone`: quiet hours' wall clock
        self.policy = PolicyRepo(db, clock)
        self.outbox = OutboxRepo(db, clock)
        self.admin = AdminRepo(db, clock, zone)  # `zone`: a retry's quiet hours too

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Clock = time.time,
        create: bool = True,
        group_fsync: bool = False,
        zone: tzinfo | None = None,
        integrity: bool = True,
        progress: StartProgress | None = None,
    ) -> Store:
        db = Db.open(
            path,
            create=create,
            group_fsync=group_fsync,
            integrity=integrity,
            clock=clock,
            progress=progress,
        )
        return cls(db, clock=clock, zone=zone)

    @property
    def path(self) -> Path:
        return self.db.path

    async def write(self, work: Callable[[], T], *, interactive: bool = False, replayable: bool = False) -> T:
        return await self.db.write(work, interactive=interactive, replayable=replayable)

    def submit(
        self, work: Callable[[], T], *, interactive: bool = False, replayable: bool = False
    ) -> asyncio.Future[T]:
        return self.db.submit(work, interactive=interactive, replayable=replayable)

    async def drain(self) -> None:
        await self.db.drain()

    def close(self) -> None:
        self.db.close()


__all__ = [
    "AcceptResult",
    "Acceptance",
    "ClaimedPart",
    "Db",
    "Finished",
    "NewMessage",
    "NewPart",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreReplaced",
    "StoreUnusable",
]
