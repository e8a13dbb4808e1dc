"""WAL checkpoints away from the event loop.

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on the committing
thread: the event loop would copy pages into the database file and fsync it while every SMTP
session and link waits. The serving daemon turns it off (`wal_autocheckpoint=0`) and checkpoints
from a thread of its own, on a connection that only that thread ever uses (the loop's connection
stays the loop's). The loop looks at the WAL's size after each group fsync (one `fstat`): past
`limit` bytes a PASSIVE checkpoint is started, which waits for nobody. `journal_size_limit` makes
SQLite cut the file back to `limit` whenever it starts the WAL over, so the size grows past
`limit` again only once that many bytes were written since. Passive checkpoints cannot always
catch up with a steady stream of commits; when the WAL reaches `HARD_FACTOR` times the limit, a
TRUNCATE checkpoint runs while the loop holds its writes back (right after the passive one, if
that is still copying), so the file cannot grow without bound.

A reader that holds a snapshot (an sqlite3 shell left in a transaction, a long report, a backup)
keeps any checkpoint from cutting the WAL, which then grows with every mail until it ends (85 KB a
mail: 132 MB in 25 s of load). Each TRUNCATE it holds off is counted (`walpin.PinWatch`): past
`WAL_PINNED_WARN_SECONDS` or `WAL_PINNED_WARN_BYTES`, `store.wal_pinned` is logged as a warning,
and `smsgw status` and systemd's STATUS= line show it until a TRUNCATE gets through.

On a small state filesystem the WAL alone filled the disk long before it reached `limit` (a 3 MB
tmpfs: 452 for every mail after 14, the database file 4 KB and its WAL 3 MB), and it took back all
the room an admin freed. So space decides too (`gateway.store.trouble.wal_crowding`): a WAL that
takes a third of what is left, or any sizeable WAL on a disk under its floor, is cut back by a
TRUNCATE (`store.checkpoint`, `why`); a batch that fails for a full disk asks for one, and the mail
of an SMTP client in it runs once more after it (250 rather than 452 when that gave room back). A
TRUNCATE leaves the file empty, so `journal_size_limit` (which only trims a WAL started over) keeps
the `limit` it has; only space can cut the WAL below it.

A TRUNCATE holds the loop's writes; one waiting for a reader (up to `BUSY_MS`) stalled every SMTP
reply as long (a billing render or panel search holding its snapshot a second under 100 mails/s: 1-2 s).
So readers are looked for holding nothing: a PASSIVE checkpoint that could not copy all the frames
it saw was stopped by a reader's snapshot (`Checkpointer.in_way`). While one is, PASSIVE ones copy
what they can and `store.checkpoint_deferred` says why (once a reader); a TRUNCATE by size waits
`GLANCE_BUSY_MS` at most (a short read ends in that). Only past `reader_bound` (`READER_FACTOR` ×
the limit, or a `READER_SPACE_SHARE`th of the free room if less) are writes held while a TRUNCATE
waits for the reader, as at the hard bound before; the checks for space come first throughout.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

import structlog

from gateway.store.trouble import disk_full, wal_crowding
from gateway.store.walpin import PinWatch

log = structlog.get_logger(__name__)

# SQLite's own default threshold is 1,000 pages (about 4 MB with 4 KiB pages); 4,000 here. A mail
# writes its queue and state rows several times over (about 14 WAL frames), mostly the same few
# pages: the more mails one checkpoint covers, the fewer pages it copies (5.9 a mail at 4 MB, 3.0 at
# 16 MB), which took 0.02-0.05 ms of CPU a mail (3-7 %) off the main process in bench/e2e.py.
DEFAULT_LIMIT_BYTES = 16_384_000
# The hard bound is 2 × the limit (33 MB), not 4 ×: the TRUNCATE it starts holds the loop's writes
# while it copies and fsyncs, measured at 75 ms for 32 MB of WAL none of it copied yet (47 ms at
# 16 MB, the bound of the former 4 MB limit; 145 ms at 64 MB). Under bench/e2e.py's load the passive
# checkpoints keep the WAL below 31 MB (no TRUNCATE; at 4 MB it passed 16 MB up to 3 times a run),
# so the bound is for a slow disk or a busy machine.
HARD_FACTOR = 2
# The checkpoint thread may wait this long for readers (of other processes) to let a TRUNCATE through.
BUSY_MS = 2_000
# ... and this long once a TRUNCATE found a reader that outlasted BUSY_MS: a long read (`smsgw
# backup` of a large database) pins the WAL, and each TRUNCATE, with the loop's writes held, would
# stall intake for the whole BUSY_MS again and again until it ends.
PINNED_BUSY_MS = 50
# While such a reader holds on, a TRUNCATE (writes held) is tried again only this often; the commits
# in between checkpoint PASSIVE, holding nothing (else every commit would wait PINNED_BUSY_MS).
PINNED_RETRY_SECONDS = 5.0
# A TRUNCATE for space that failed (no room even for the pages it copies into the database file) is
# tried again only this often, or at once when space was freed: meanwhile a full disk fails writes (452).
SPACE_RETRY_SECONDS = 1.0
# While a reader is in the way, the WAL may grow to READER_FACTOR × the limit (1 GB at the default:
# 12,000 mails of 85 KB) or a READER_SPACE_SHARE-th of the free room, if less, before writes are held.
READER_FACTOR = 64
# A TRUNCATE by size (no reader seen in its way) waits this long at most: a short read ends in it.
GLANCE_BUSY_MS = 20
READER_SPACE_SHARE = 4
READER_CAUSE = "a reader holds an old snapshot (a billing render, a panel search or export, a backup)"


class Checkpointer:
    """A thread and its own connection, for `PRAGMA wal_checkpoint`."""

    def __init__(self, path: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.pin = PinWatch(monotonic)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        self._conn: sqlite3.Connection | None = None
        self._thread: int | None = None
        self._pinned = False  # the last TRUNCATE met a reader it could not wait out (checkpoint thread only)
        self._tried_at = 0.0  # monotonic time of the last TRUNCATE
        # The last checkpoint was stopped short by a reader's snapshot (checkpoint thread writes).
        self.in_way = False
        # The next TRUNCATE may wait for readers (BUSY_MS): set by the loop before it asks for one.
        self.patient = True
        # Around each checkpoint, the only writes of the database file while serving (`startcheck`).
        self.writing: Callable[[], AbstractContextManager[None]] = nullcontext

    def run(self, mode: str) -> tuple[int, int, int]:
        """In the checkpoint thread: (busy, frames in the WAL, frames copied), as SQLite reports them."""
        conn = self._connection()
        if mode == "TRUNCATE":
            wait = (PINNED_BUSY_MS if self._pinned else BUSY_MS) if self.patient else GLANCE_BUSY_MS
            conn.execute(f"PRAGMA busy_timeout={wait}")
            self._tried_at = time.monotonic()
        with self.writing():
            row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        busy, frames, copied = int(row[0]), int(row[1]), int(row[2])
        if mode == "TRUNCATE":
            self._pinned = bool(busy)
        # PASSIVE copies up to the oldest snapshot a reader holds: short of the frames it saw, a
        # reader is in the way (the loop's own reads are of the newest snapshot, never older).
        self.in_way = bool(busy) or copied < frames
        return busy, frames, copied

    def pinned(self) -> bool:
        """A reader held the last TRUNCATE off moments ago: another now would only wait for it again.
        (Read from the loop's thread; two plain attributes the checkpoint thread writes.)"""
        return self._pinned and time.monotonic() - self._tried_at < PINNED_RETRY_SECONDS

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._thread = threading.get_ident()
            # mode=rw: a file deleted since the guard last looked must not be created anew here
            # (it would take the old WAL's pages, and the guard would then see "replaced", not
            # "deleted", and make no rescue copy).
            uri = f"file:{pathname2url(str(self.path))}?mode=rw"
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_MS / 1000)
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        elif self._thread != threading.get_ident():
            raise RuntimeError("the checkpoint connection belongs to the checkpoint thread")
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Wait for a running checkpoint, then close the connection in the thread that opened it."""
        self.executor.submit(self._close_connection).result()
        self.executor.shutdown(wait=True)


class CheckpointScheduling:
    """When the group commit (`gateway.store.commit.GroupCommit`) checkpoints, and holding its
    writes while a TRUNCATE is due or runs; the state below is the group commit's."""

    path: Path
    _checkpointer: Checkpointer | None
    _wal_fd: int | None
    wal_limit: int
    _checkpoint_task: asyncio.Task[None] | None
    _writes_held: bool
    _truncate_next: bool
    _pending: list[Any]
    _urgent: list[Any]
    _flush_scheduled: bool
    _flush: Callable[[], None]
    # The last TRUNCATE for space that failed: its monotonic time, and the free bytes it was asked at.
    _space_failed: tuple[float, int] = (float("-inf"), 0)
    _space_asked_free = 0
    # A TRUNCATE for space cut the WAL to nothing and no commit has gone through since: when a write
    # then finds the disk full again, all it gave back was the failed write's own bytes.
    _space_cut = False
    _deferring = False  # `store.checkpoint_deferred` said for the reader in the way now
    _past_reader_bound = False  # ... and the warning that writes are held for it

    def _maybe_checkpoint(self) -> None:
        """Start a checkpoint in its thread once the WAL has grown past `wal_limit` (one fstat), or
        takes room the disk is short of (a statvfs, once it is sizeable)."""
        self._space_cut = False  # a commit went through: a TRUNCATE for space may help again
        if self._checkpointer is None or self._wal_fd is None:
            return
        size = os.fstat(self._wal_fd).st_size
        if self._checkpoint_task is None and self._truncate_for_space(size):
            return
        if size <= self.wal_limit:
            return
        # Past the hard bound a TRUNCATE runs with writes held, unless a long reader (`smsgw
        # backup`) pins the WAL: then PASSIVE ones copy what they can until it is tried again.
        hard = size > HARD_FACTOR * self.wal_limit and not self._checkpointer.pinned()
        if hard and self._checkpointer.in_way:
            hard = self._reader_in_the_way(size)
        if self._checkpoint_task is not None:
            if hard and not self._writes_held:
                # A passive checkpoint is still copying (a slow disk, a busy machine) while the WAL
                # passed the hard bound: nothing more is written until a TRUNCATE has run after it.
                self._writes_held = self._truncate_next = True
            return
        task = self._checkpoint("TRUNCATE" if hard else "PASSIVE", size, wait=self._checkpointer.in_way)
        self._checkpoint_task = asyncio.get_running_loop().create_task(task)

    def reader_bound(self) -> int:
        """How large the WAL may grow while a reader is in the way before writes are held for it."""
        try:
            st = os.statvfs(self.path.parent)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = 0
        room = min(READER_FACTOR * self.wal_limit, free // READER_SPACE_SHARE)
        return max(HARD_FACTOR * self.wal_limit, room)

    def _reader_in_the_way(self, size: int) -> bool:
        """The WAL is past the hard bound and a reader stopped the last checkpoint: whether to hold
        the writes for a TRUNCATE that waits for it (only past `reader_bound`), said once a reader."""
        bound = self.reader_bound()
        if size <= bound:
            if not self._deferring:
                self._deferring = True
                log.info("store.checkpoint_deferred", cause=READER_CAUSE, wal_bytes=size, bound_bytes=bound)
            return False
        if not self._past_reader_bound:
            self._past_reader_bound = True
            why = f"past its bound for a reader: {READER_CAUSE}"
            log.warning("store.checkpoint", mode="TRUNCATE", why=why, wal_bytes=size, bound_bytes=bound)
        return True

    def recheck_pinned_wal(self) -> None:
        """While a reader pins the WAL, try a TRUNCATE every PINNED_RETRY_SECONDS even with no commit.

        Commits are what start checkpoints: on a quiet evening nothing would notice the reader
        leave, and the warning (and the WAL's size) would stand until the next mail. Called by the
        housekeeping worker, on the loop."""
        checkpointer = self._checkpointer
        if checkpointer is None or self._wal_fd is None or self._checkpoint_task is not None:
            return
        size = os.fstat(self._wal_fd).st_size
        # Space freed on a quiet evening: the WAL that filled the disk is cut back without a mail.
        if self._truncate_for_space(size) or checkpointer.pin.since is None or checkpointer.pinned():
            return
        # While a reader was in the way a PASSIVE one looks (it holds nothing); a TRUNCATE, never
        # waiting for a reader, once one found the way clear.
        mode = "PASSIVE" if checkpointer.in_way else "TRUNCATE"
        self._checkpoint_task = asyncio.get_running_loop().create_task(self._checkpoint(mode, size))

    def _truncate_for_space(self, size: int, full: BaseException | None = None) -> bool:
        """Start a TRUNCATE, writes held from now, when the WAL crowds a nearly full disk or (`full`)
        a write found it full; False when none can help or a failed one was tried a moment ago."""
        checkpointer = self._checkpointer
        if checkpointer is None or self._checkpoint_task is not None or checkpointer.pinned():
            return False
        room = wal_crowding(self.path.parent, size, full=full is not None)
        if room is None:
            return False
        failed_at, failed_free = self._space_failed
        if time.monotonic() - failed_at < SPACE_RETRY_SECONDS and room["free_bytes"] <= failed_free:
            return False  # it found no room a moment ago, and none was freed since
        if full is not None and self._space_cut:
            # No commit got through since the last one emptied the WAL: it gave back no room a
            # commit could use (often the WAL held only what a failed write had begun, 56 bytes on
            # ext4, no frame), so as for one that failed, not again for a second. Else every
            # refused mail cut back an empty WAL and logged two lines, not a line a second a kind.
            self._space_cut = False
            self._space_failed = (time.monotonic(), room["free_bytes"])
            return False
        why = room.pop("why")
        self._space_asked_free = room["free_bytes"]
        log.warning("store.checkpoint", mode="TRUNCATE", why=why, wal_bytes=size, **room)
        self._writes_held = True  # not one more batch into the WAL before it is cut back
        loop = asyncio.get_running_loop()
        self._checkpoint_task = loop.create_task(self._checkpoint("TRUNCATE", size, why, wait=True))
        return True

    def _retry_after_checkpoint(self, batch: list[Any], exc: BaseException) -> list[Any]:
        """A batch failed whole: when for a full disk, a TRUNCATE is asked for, and the pieces a
        client waits for that may run again (an accepted mail's rows) wait for it and run once
        more; the pieces to fail now.

        A piece runs at most twice, so a disk no checkpoint can help refuses its mail (452) after one
        TRUNCATE; nobody hears 250 before the second run has committed and its WAL is fsynced.
        Background work (claims, receipts, outcomes) fails as before: its callers retry on their
        own, the WAL cut back by then."""
        if not disk_full(exc) or self._wal_fd is None:
            return batch
        if not self._truncate_for_space(os.fstat(self._wal_fd).st_size, full=exc):
            return batch
        again = [item for item in batch if item.interactive and item.replayable and not item.retried]
        for item in again:
            item.retried = True
        self._urgent[:0] = again
        return [item for item in batch if item not in again]

    def wal_pinned(self) -> dict[str, Any] | None:
        """A reader's pin on the WAL once reported (`PinWatch`): its size now and for how long."""
        if self._checkpointer is None or self._wal_fd is None:
            return None
        return self._checkpointer.pin.report(os.fstat(self._wal_fd).st_size)

    async def _checkpoint(self, mode: str, size: int, why: str | None = None, *, wait: bool = False) -> None:
        """`wait`: a TRUNCATE may wait BUSY_MS for readers (for space, past `reader_bound`), else barely."""
        checkpointer = self._checkpointer
        assert checkpointer is not None
        loop = asyncio.get_running_loop()
        checkpointer.patient = wait
        # A TRUNCATE waits for the writer lock: the loop holds its batches back instead of meeting
        # a busy database (and its retries) for the few milliseconds the copy takes.
        self._writes_held = mode == "TRUNCATE"
        try:
            busy, frames, copied = await loop.run_in_executor(checkpointer.executor, checkpointer.run, mode)
        except (sqlite3.Error, RuntimeError) as exc:
            log.warning("store.checkpoint_failed", mode=mode, error=str(exc), **_why(why))
            if why is not None:
                self._space_failed = (time.monotonic(), self._space_asked_free)
        except asyncio.CancelledError:
            self._truncate_next = False  # stopping: no checkpoint after this one
            raise
        else:
            (log.info if mode == "TRUNCATE" else log.debug)(
                "store.checkpointed",
                mode=mode,
                wal_bytes=size,
                busy=busy,
                frames=frames,
                copied=copied,
                **_why(why),
            )
            if mode == "TRUNCATE" and self._wal_fd is not None:
                left = os.fstat(self._wal_fd).st_size
                if why is not None and left:  # a reader in the way: no room came back
                    self._space_failed = (time.monotonic(), self._space_asked_free)
                elif why is not None:
                    self._space_cut = True  # the next commit tells whether that gave room back
                if busy:
                    checkpointer.pin.busy(left)
                else:
                    checkpointer.pin.ended(left)
            elif checkpointer.in_way and size > HARD_FACTOR * self.wal_limit and self._wal_fd is not None:
                checkpointer.pin.busy(os.fstat(self._wal_fd).st_size)  # a TRUNCATE held off by the reader
            if not checkpointer.in_way:
                self._deferring = self._past_reader_bound = False
        finally:
            self._checkpoint_task = None
            fd = self._wal_fd if self._truncate_next else None
            size = os.fstat(fd).st_size if fd is not None else 0
            # The passive one may have found a reader in the way: then no TRUNCATE under its bound.
            if fd is not None and (not checkpointer.in_way or self._reader_in_the_way(size)):
                self._truncate_next = False  # writes stay held through it
                task = self._checkpoint("TRUNCATE", size, wait=checkpointer.in_way)
                self._checkpoint_task = loop.create_task(task)
            else:
                self._truncate_next = False
                self._writes_held = False
                if (self._pending or self._urgent) and not self._flush_scheduled:
                    self._flush_scheduled = True
                    loop.call_soon(self._flush)


def _why(why: str | None) -> dict[str, str]:
    """`why` for a log line of a checkpoint for space; nothing for one by size (as before)."""
    return {"why": why} if why else {}
