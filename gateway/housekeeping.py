"""The housekeeping worker: expiry, reassembly timeouts, the status file for `smsgw status`, the
one-line status systemd shows in `systemctl status` (`STATUS=` over sd_notify), and the watch for
the wall clock stepping back.

These run every few seconds and must keep running for as long as the daemon says it is healthy,
so they form a supervised worker (heartbeat, restart on a crash, shown in the status) rather than
scheduler jobs, whose failures would only be logged. Their writes go through the store's shared
`write()`, on the event loop, like every other write.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

import gateway
from billing_reports.failedjobs import failures, short, unkept
from gateway import reassembly, tlsrenewal
from gateway.bitelog import FaultLog
from gateway.clockcheck import CLOCK_STEP_SECONDS as CLOCK_STEP_SECONDS  # where it always was
from gateway.clockcheck import ClockCheck
from gateway.conversations import kept as kept_answers
from gateway.events import GatewayEvents
from gateway.filemodes import write_private
from gateway.notifier import Notifier
from gateway.statusfile import STATUS_FILE as STATUS_FILE  # where it always was, for its readers
from gateway.statusfile import read_status as read_status
from gateway.statusfile import remove_starting
from gateway.statusline import status_line as status_line  # where it always was, for its readers
from gateway.statuswaits import WaitingLook
from gateway.store.db import Store
from gateway.store.forwardsteps import window_start
from gateway.store.outboxhealth import outbox_health
from gateway.store.queue import EXPIRE_BATCH
from gateway.store.reader import ReadThread
from gateway.store.segmentsets import PARTS_APART_SECONDS
from gateway.store.trouble import LockWatch, disk_space, store_locked
from gateway.store.walcheck import boot_id
from gateway.supervisor import beat, notify_status
from smsc.outage import boottime

log = structlog.get_logger(__name__)

EXPIRY_INTERVAL = 15.0
STATUS_INTERVAL = 2.0
# How often the answers kept past the hourly mail limit are looked at (`gateway.conversations.kept`).
KEPT_INTERVAL = 60.0


class Housekeeping(ClockCheck):
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        events: GatewayEvents,
        status: Callable[[], dict[str, Any]],
        status_path: Path,
        *,
        monotonic: Callable[[], float] = boottime,  # through a suspend too: time passed, no step
        elapsed: Callable[[], float] | None = None,  # the clock check's alone; `monotonic` when not given
        reassembly_timeout: float = reassembly.TIMEOUT_SECONDS,
        links_up: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.links_up = links_up  # whether any link to an SMSC is up now
        self.reassembly_timeout = reassembly_timeout  # [replies] reassembly_timeout_seconds
        self.notifier = notifier
        self.events = events
        self.status = status
        self.status_path = status_path
        self.monotonic = monotonic
        # The daemon under a test's clock counts its moves as time passed (`Daemon.elapsed`), while
        # the waits between chores and the lock's duration still run on real time.
        self.elapsed = elapsed or monotonic
        # The clock check's state; its reading is kept only on real boot time (`ClockCheck.kept`).
        super().__init__(store, notifier, self.elapsed, boot_id() if self.elapsed is boottime else None)
        self._said = ""
        self._start_gone = False  # at this daemon's first status (ClockCheck has `_started`)
        self.lock_watch = LockWatch(monotonic)
        # What waits, for STATUS=, read off the loop (`_status_loop`); closed with the status task.
        self.waiting = WaitingLook(ReadThread(store.db.path, "status-reads"))
        self._last_status: dict[str, Any] = {}

    async def run(self) -> None:
        """The status file every STATUS_INTERVAL, in a task of its own, and the chores that write.

        The status file was written after the chores' writes: with the database locked by another
        process each waited 30 s and failed, the file stopped, and `smsgw status` took the daemon
        for hung. The status task does not beat for the worker (a context of its own): chores
        that hang still leave the worker stalled."""
        status = asyncio.create_task(self._status_loop(), context=contextvars.Context())
        try:
            await self._chores()
        finally:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status

    async def _chores(self) -> None:
        last_expiry: float | None = None
        last_kept: float | None = None
        while True:
            beat()
            try:
                await self.check_clock()  # before expiry: validities move with a step
                now = self.monotonic()
                if last_expiry is None or now - last_expiry >= EXPIRY_INTERVAL:
                    last_expiry = now
                    await self.expire()
                if last_kept is None or now - last_kept >= KEPT_INTERVAL:
                    last_kept = now
                    await self.mail_kept()
                await self.events.resume_waiting()  # answers that waited for a submit's answer
            except Exception as exc:
                if not store_locked(exc):
                    raise
                # Another process holds the database: the status says so; tried again next turn.
                _lock_faults.warning("housekeeping.store_locked", exc, error=str(exc))
            await asyncio.sleep(STATUS_INTERVAL)

    async def _status_loop(self) -> None:
        try:
            while True:
                try:
                    await self.waiting.refresh(self._last_status, self.monotonic(), self.store.clock())
                    self._last_status = self.report_status()
                except Exception as exc:  # the next turn tries again; one line a second at most
                    _status_faults.error("status.failed", exc, traceback=True, error=str(exc))
                await asyncio.sleep(STATUS_INTERVAL)
        finally:
            # In a thread: the close waits for a read under way (a big queue's oldest-mail read),
            # which on the loop stalled SMTP and the panel for its rest when this loop crashed.
            await asyncio.to_thread(self.waiting.reads.close)

    def report_status(self) -> dict[str, Any]:
        """The status file, and systemd's STATUS= line when it changes (its one writer)."""
        status = self.store_status()
        write_status(self.status_path, status)
        if not self._start_gone and (read_status(self.status_path.parent) or {}).get("pid") == os.getpid():
            # The start's file stood until now (`StartProgress.opened`): killed before this first
            # write, `smsgw status` named the start, not the daemon before it whose file this replaces.
            remove_starting(self.status_path.parent)
            self._start_gone = True
        waits = self.waiting.said(status, getattr(self.notifier, "config", None), self.store.clock())
        said = status_line(status, *waits)
        if said != self._said:  # only changes: the journal keeps every STATUS= as a record
            notify_status(said)
            self._said = said
        return status

    async def mail_kept(self) -> int:
        """The answers a phone's flood kept, mailed once it has been quiet for an hour. Its failure
        is logged and tried again next time: it must not stop the expiry and the status here."""
        config = self.notifier.config
        try:
            return await self.store.write(lambda: kept_answers.mail_due(self.store, config))
        except Exception:
            log.exception("mo.kept_failed")
            return 0

    def store_status(self) -> dict[str, Any]:
        """The daemon's status, with a reader's pin on the WAL (`gateway.store.walpin.PinWatch`).

        Looked at here, every STATUS_INTERVAL: with no mail coming in, no commit would start the
        TRUNCATE that finds the reader gone, and the pin would be shown long after it ended."""
        self.store.db.recheck_pinned_wal()
        status: dict[str, Any] = {
            **self.status(),
            # The code this daemon runs: `smsgw status` tells it from the installed one after an
            # upgrade not followed by a restart (`gateway.cli.statusdaemon.running_words`).
            "version": gateway.__version__,
            "wal_pinned": self.store.db.wal_pinned(),
            # The certificates as the last look found them (`gateway.tlsrenewal.CertificateWatch`).
            "tls": tlsrenewal.report(),
            "disk": disk_space(self.status_path.parent).look(),
        }
        # A billing run or purge failing (`billing_reports.failures`), as status heads its line: the
        # STATUS= line and the file said all was well meanwhile. Two key reads of a small table. One the
        # database refused to keep (a full disk) is said from memory: whole, for `smsgw status`.
        if held := unkept(self.store):
            status["jobs_unkept"] = dict(held)
        if failed := {**failures(self.store.db.conn), **held}:
            status["failed_jobs"] = {kind: short(kind, failure) for kind, failure in failed.items()}
        if (locked := self.lock_watch.look(*self.store.db.lock_waits())) is not None:
            status["store_locked"] = {"for_seconds": round(locked, 1)}
        if status.get("outbox"):  # a few index reads, only while mail waits for the relay
            mail = outbox_health(self.store.db.conn, self.store.clock())
            if (stuck := mail.stuck_for(self.store.clock())) is not None:
                status["relay_stuck"] = {"for_seconds": round(stuck, 1), "said": mail.said}
        return status

    async def expire(self) -> None:
        """Parts past their validity fail (bounces queued with them); stale MO segments are joined,
        and those made whole by a part sent apart once it waited `PARTS_APART_SECONDS`.

        Parts whose delivery report never came end `unreported`: no bounce for those (the SMSC took
        them); the notifier confirms them only to an account that asks for every outcome.

        A set of segments is stale when no part of it came for the timeout, and the daemon has run
        that long: a set whose other parts the SMSC held through the daemon's downtime would be
        joined by the first look after the start, before the SMSC could deliver them. (A link
        down while the daemon runs does not hold the timeout back: a link that drops every few
        minutes would keep a set from ever being mailed. Parts that come after the join follow
        it, `MoRepo.followed`.)
        """
        store = self.store

        if self.links_up is not None and not self.links_up():
            await store.write(store.queue.note_no_link)  # the cause their bounces name

        def batch() -> int:
            finished, parts = store.queue.expire_batch(EXPIRE_BATCH)
            self.notifier([f for f in finished if not f.quiet])  # quiet: no failure, nothing to count
            return parts

        # A batch per write, each a short hold of the event loop (`QueueRepo.expire_batch`).
        while await store.write(batch) == EXPIRE_BATCH:
            beat()

        def work() -> None:
            # Parts sent apart wait `PARTS_APART_SECONDS` for their own SMS's other parts; after a
            # start as long, for those the SMSC held through the downtime.
            if self.started_at <= store.clock() - PARTS_APART_SECONDS:
                for mo_id in store.mo.join_sent_apart():
                    self.events.whole_mo(mo_id)
            # A step forward of the clock within the timeout is no time passed (`forwardsteps`):
            # counted, a set whose last part was on its way was mailed with a gap at the next look.
            older_than = window_start(store.db.conn, store.clock(), self.reassembly_timeout)
            if self.started_at > older_than:
                return
            for mo_id in store.mo.join_stale_segments(older_than):
                self.events.whole_mo(mo_id)

        await store.write(work)


def write_status(path: Path, data: dict[str, Any]) -> None:
    """Replace the status file whole (a reader never sees half of it), private like the database.

    On a full disk the new file cannot be created, and `smsgw status` said "not answering" while the
    daemon ran on, refusing mail with 452: the one moment its report matters most. The file is
    then overwritten in place, in the blocks it already has (padded with spaces, which JSON
    ignores, so no truncation is needed)."""
    text = json.dumps({"pid": os.getpid(), "updated_at": time.time(), **data})
    tmp = path.with_suffix(".tmp")
    try:
        write_private(tmp, text)
        tmp.replace(path)
        return
    except OSError as exc:
        failed = exc
    with contextlib.suppress(OSError):
        tmp.unlink()
    if failed.errno in (errno.ENOSPC, errno.EDQUOT) and _overwrite(path, text):
        return
    _status_faults.warning("status.write_failed", failed, path=str(path), error=str(failed))


def _overwrite(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        data = text.encode().ljust(os.fstat(fd).st_size, b" ")
        return os.pwrite(fd, data, 0) == len(data)
    except OSError:
        return False
    finally:
        os.close(fd)


_status_faults = FaultLog(log)  # every few seconds: a disk that stays full must not log a line each time
# A database locked by another process fails the chores' writes every turn: one line a minute.
_lock_faults = FaultLog(log, interval=60.0)


def remove_status(path: Path) -> None:
    """On a clean stop: `smsgw status` then says "not running" at once, not after the file goes stale.
    A state directory remounted read-only refused it, which cut the stop short (no `daemon.stopped`,
    held log counts lost) and ended it with "cannot start: ...status.json", hiding the real trouble."""
    remove_starting(path.parent)  # stopped before its first status: no start cut short
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("status.remove_failed", path=str(path), error=str(exc))
