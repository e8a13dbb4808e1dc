"""Supervised workers: restart with back-off on a crash, heartbeats, and the systemd watchdog.

A worker that dies must never go unnoticed: a dispatcher that stopped after one transient database error
would leave mail answered `250` and never sent. Each worker therefore runs in a supervise-and-restart loop
inside one `asyncio.TaskGroup`; a crash is logged with its traceback (a worker's child process that ended,
`ProcessEnded`, by its pid and status alone) and the worker starts again after a growing pause. Workers
call `beat()` once per loop turn, and the systemd watchdog is pinged only while every worker has beaten
recently, so a worker stuck for good (not crashing, just hanging) gets the whole daemon restarted.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gateway.bitelog import FaultLog
from gateway.crashloop import loop_crashes, note_crash, note_stop

log = structlog.get_logger(__name__)

STALL_AFTER_SECONDS = 60.0  # a worker silent for longer is stalled and the watchdog is withheld
BACKOFF_MIN_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0  # below the stall limit: a crash-looping worker is not also "stalled"
WATCHDOG_DEFAULT_INTERVAL = 2.0
# The watchdog's own wake-up this much late means the whole loop stood still (see `_watchdog`).
STOOD_STILL_SECONDS = 5.0
# The start's integrity check reads the whole database: 150 MB/s was measured cold, a slow disk is
# assumed here. Past START_CHECK_FREE_SECONDS of it, systemd is asked for the time (a store of some
# 15 million messages outlasted the default TimeoutStartSec of 90 s, and every start was killed).
CHECK_BYTES_PER_SECOND = 50e6
START_CHECK_FREE_SECONDS = 10.0
# While the check and migrations run, systemd is asked for this much more each `watchdog_interval()`.
EXTEND_AHEAD_SECONDS = 30.0

# A database locked by another process, or a full disk, fails every worker's writes until it ends: one
# line a minute (with how many were held back), not a crash with a traceback each.
_lock_faults = FaultLog(log, interval=60.0)

_current: contextvars.ContextVar[Worker | None] = contextvars.ContextVar("smsgw_worker", default=None)


class ProcessEnded(Exception):
    """A worker's child process ended (killed, crashed, exited): its pid and status say what there is to
    say. Logged with a traceback, every worker death showed the daemon's own `raise`, read as a bug."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields  # pid, status or signal: logged as fields of `worker.crashed`


def _store_waits(exc: BaseException) -> str | None:
    """A write waiting on the store, no crash: a lock another process holds, or a full disk (tried
    each second: once freed, sending waited up to 30 s of back-off, each retry with its traceback)."""
    from gateway.store.trouble import disk_full, store_locked

    if store_locked(exc):
        return "worker.store_locked"
    return "worker.disk_full" if disk_full(exc) else None


def beat() -> None:
    """Tell the supervisor the calling worker is alive; a no-op outside a supervised worker."""
    worker = _current.get()
    if worker is not None:
        worker.last_beat = time.monotonic()


def sd_notify(message: str) -> None:
    """systemd's notify protocol, without a dependency: one datagram to $NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(message.encode())


# systemd's STATUS= line is composed in one place: the housekeeping's line (queue, links, store,
# relay) and the supervisor's withheld watchdog. Each wrote it whole: "STATUS=running" after a stall
# stayed until the queue changed, and the withheld watchdog was overwritten within the second.
_status_parts: dict[str, Any] = {"line": "", "withheld": []}


def notify_status(line: str | None = None, *, withheld: list[str] | None = None) -> None:
    """Send STATUS= with `line` (the housekeeping's) or `withheld` (the stalled workers) changed."""
    if line is not None:
        _status_parts["line"] = line
    if withheld is not None:
        _status_parts["withheld"] = list(withheld)
    said, stalled = _status_parts["line"], _status_parts["withheld"]
    if stalled:
        said = f"watchdog withheld, stalled: {', '.join(stalled)}" + (f"; {said}" if said else "")
    if said:
        sd_notify(f"STATUS={said}")


def database_bytes(db: Path) -> int:
    """The database and its WAL: what the start's integrity check reads."""
    size = 0
    for path in (db, Path(f"{db}-wal")):
        with suppress(OSError):
            size += path.stat().st_size
    return size


def extend_start_for(db: Path) -> float:
    """Before the database is checked: EXTEND_TIMEOUT_USEC for as long as reading it may take, and
    the 90 s systemd gives a start, when that is more than START_CHECK_FREE_SECONDS; the estimate.

    A first guess only: a disk slower than assumed (31 MB/s was measured cold) is covered by
    `StartProgress`, which asks again while the check and the migrations go on."""
    seconds = database_bytes(db) / CHECK_BYTES_PER_SECOND
    if seconds > START_CHECK_FREE_SECONDS:
        sd_notify(f"EXTEND_TIMEOUT_USEC={int((seconds + 90) * 1e6)}")
    return seconds


class StartProgress:
    """The daemon's start while it checks and upgrades its database: told to systemd, the log and
    the commands, and its start allowance extended for as long as the work goes on.

    One estimate of the check's time was asked once: on a disk slower than assumed a large database
    outlasted it, and systemd killed the start mid-check and began it again, for ever. Instead
    `tick` (SQLite's progress handler on the connection during the check and the migrations, and
    each turn of a wait for the write lock) asks for EXTEND_AHEAD_SECONDS more every
    `watchdog_interval()`: a start that stops making progress is still killed that long after.
    Each step is also written to the start file (`gateway.statusfile`), where `smsgw status` and
    every other command read what the daemon is doing.
    """

    def __init__(self, db: Path, state_dir: Path, *, every: float | None = None) -> None:
        from gateway import __version__

        self.db = db
        self.state_dir = state_dir
        self.version = __version__
        self.every = watchdog_interval() if every is None else every
        self._next = time.monotonic() + self.every
        self._upgrade: dict[str, Any] = {}
        self._waits_said: set[int] = set()

    def checking(self) -> None:
        """Before the integrity check: the line, systemd's status, the first estimate, the start file."""
        from gateway.housekeeping import write_status
        from gateway.statusfile import START_FILE, size_words

        size = database_bytes(self.db)
        estimate = extend_start_for(self.db)
        log.info("store.checking", path=str(self.db), bytes=size, estimate_seconds=round(estimate, 1))
        sd_notify(f"STATUS=checking the database ({size_words(size)})")
        checking = {"version": self.version, "phase": "checking", "bytes": size}
        write_status(self.state_dir / START_FILE, checking)
        self._next = time.monotonic() + self.every

    def upgrading(self, at: int, to: int) -> None:
        """Before migration `at + 1` of an existing database (one being created says nothing)."""
        from gateway.housekeeping import write_status
        from gateway.statusfile import START_FILE

        if not self._upgrade:
            self._upgrade = {"version": self.version, "phase": "upgrading", "from": at, "to": to}
        sd_notify(f"STATUS=upgrading the database: schema {at + 1} of {to}")
        write_status(self.state_dir / START_FILE, {**self._upgrade, "at": at})
        self.tick()

    def waiting(self, migration: int) -> None:
        """A turn of the wait for the database's write lock (which another process holds) before
        `migration`: said once for each."""
        if migration not in self._waits_said:
            self._waits_said.add(migration)
            log.warning(
                "store.lock_wait",
                path=str(self.db),
                migration=migration,
                note="another process holds the database's write lock (an smsgw command, a backup,"
                " an sqlite3 shell): the start waits for it",
            )
        self.tick()

    def tick(self) -> int:
        """SQLite's progress handler: 0 lets the statement go on."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            sd_notify(f"EXTEND_TIMEOUT_USEC={int(EXTEND_AHEAD_SECONDS * 1e6)}")
        return 0

    def done(self) -> None:
        from gateway.statusfile import remove_starting

        remove_starting(self.state_dir)


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec (as $WATCHDOG_USEC), as sd_watchdog_enabled(3) advises."""
    with suppress(KeyError, ValueError):
        usec = int(os.environ["WATCHDOG_USEC"])
        if usec > 0:
            return max(usec / 2e6, 0.01)
    return WATCHDOG_DEFAULT_INTERVAL


@dataclass
class Worker:
    name: str
    factory: Callable[[], Awaitable[None]]
    # Runs before a restart (not the first start): cleans up what the crashed run left behind.
    before_restart: Callable[[], Awaitable[None]] | None = None
    stall_after: float | None = None  # None: STALL_AFTER_SECONDS at the time of the check
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_beat: float = field(default_factory=time.monotonic)
    crashed_at: deque[float] = field(default_factory=lambda: deque(maxlen=16))  # monotonic, for /healthz
    up_since: float | None = None  # the running start's time (monotonic); None while down
    warning: str | None = None  # what is amiss while it runs (`gateway.submissionretry`): /healthz says it

    def stalled(self, now: float) -> bool:
        limit = STALL_AFTER_SECONDS if self.stall_after is None else self.stall_after
        return self.state != "stopped" and now - self.last_beat > limit

    def snapshot(self, now: float) -> dict[str, Any]:
        """For `smsgw status` (whose exit code a state other than running or starting makes 1) and
        the dashboard: a worker running again between the crashes of a loop is "crash-looping"."""
        looping = loop_crashes(self.crashed_at, now, self.up_since) > 0
        return {
            "state": "stalled" if self.stalled(now) else "crash-looping" if looping else self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_beat_ago": round(now - self.last_beat, 1),
        }


def _cancelled_from_outside() -> bool:
    """Whether the running task was asked to stop (its `cancel()`), rather than a CancelledError
    coming up from something the worker awaited."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


class Supervisor:
    def __init__(self) -> None:
        self.workers: dict[str, Worker] = {}
        self.stopping = False
        self.watchdog_ticks = 0  # lets tests wait for "the watchdog has looked again" without sleeping
        self._withheld: list[str] = []
        _status_parts.update(line="", withheld=[])  # this daemon's (tests run several in a process)

    def add(
        self,
        name: str,
        factory: Callable[[], Awaitable[None]],
        *,
        before_restart: Callable[[], Awaitable[None]] | None = None,
        stall_after: float | None = None,
    ) -> Worker:
        worker = Worker(name, factory, before_restart, stall_after)
        self.workers[name] = worker
        return worker

    async def run(self) -> None:
        """Run every worker (and the watchdog) until cancelled."""
        async with asyncio.TaskGroup() as group:
            for worker in self.workers.values():
                group.create_task(self._supervise(worker), name=worker.name)
            group.create_task(self._watchdog(), name="watchdog")

    async def _supervise(self, worker: Worker) -> None:
        _current.set(worker)
        backoff = BACKOFF_MIN_SECONDS
        first = True
        while not self.stopping:
            started = worker.up_since = time.monotonic()  # its run, for the loop's end (crashloop)
            try:
                if not first and worker.before_restart is not None:
                    await worker.before_restart()
                worker.last_beat = time.monotonic()
                worker.state = "running"
                if not first:
                    log.warning("worker.restarted", worker=worker.name, restarts=worker.restarts)
                first = False
                try:
                    await worker.factory()
                except asyncio.CancelledError:
                    if self.stopping or _cancelled_from_outside():
                        raise
                    # A cancel of the worker's own (an inner task's let through) is its end, not
                    # the daemon's stop: re-raised, it ended this loop unseen, the worker dead with
                    # `status` saying "running" until the watchdog withheld a minute later.
                    raise RuntimeError("worker ended by a cancellation inside it") from None
                if self.stopping:
                    break
                raise RuntimeError("worker returned while the daemon was running")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                from gateway.store.startcheck import note_damage  # here: the store imports this module

                note_damage(exc)  # a read met a damaged file: the clean stop vouches for nothing
                if self.stopping:
                    break
                worker.restarts += 1
                worker.last_error = f"{type(exc).__name__}: {exc}"[:500]
                worker.last_error_at = time.time()
                worker.state = "restarting"
                waits = _store_waits(exc)
                if note_crash(worker, started, time.monotonic(), counted=waits is None):
                    backoff = BACKOFF_MIN_SECONDS  # it ran well for a while: a fresh fault, not a loop
                if waits is not None:
                    # An sqlite3 shell or a backup holds the database, or the disk is full: its
                    # traceback says nothing; `smsgw status` names the lock or the disk.
                    _lock_faults.warning(waits, exc, worker=worker.name, retry_in=backoff)
                elif isinstance(exc, ProcessEnded):
                    log.error(
                        "worker.crashed", worker=worker.name, error=str(exc), retry_in=backoff, **exc.fields
                    )
                else:
                    log.error(
                        "worker.crashed",
                        worker=worker.name,
                        error=worker.last_error,
                        retry_in=backoff,
                        exc_info=exc,
                    )
                await asyncio.sleep(backoff)
                worker.last_beat = time.monotonic()  # the pause is ours, not a hang of the worker
                full = waits == "worker.disk_full"  # each second: the store's own look frees it
                backoff = BACKOFF_MIN_SECONDS if full else min(backoff * 2, BACKOFF_MAX_SECONDS)
        note_stop(worker)  # its crashes before the stop make no loop: "crash-looping, running again" lied
        worker.state = "stopped"

    def stalled(self) -> list[str]:
        now = time.monotonic()
        return [w.name for w in self.workers.values() if w.stalled(now)]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {name: w.snapshot(now) for name, w in self.workers.items()}

    async def _watchdog(self) -> None:
        """Ping systemd only while every worker is beating; say which are not, once (`notify_status`).
        Its own fault is logged and the next look taken: escaping, it ended the TaskGroup and so
        cancelled every worker, with no word."""
        interval = watchdog_interval()
        slept_from: float | None = None
        while True:
            try:
                if slept_from is not None:
                    self._stood_still(time.monotonic() - slept_from - interval)
                self._look()
            except Exception as exc:
                log.error("watchdog.failed", error=f"{type(exc).__name__}: {exc}"[:500], exc_info=exc)
            slept_from = time.monotonic()
            await asyncio.sleep(interval)

    def _look(self) -> None:
        stalled = self.stalled()
        if not stalled:
            if self._withheld:
                log.info("watchdog.resumed")
                notify_status(withheld=[])
            sd_notify("WATCHDOG=1")
        elif stalled != self._withheld:
            log.error("watchdog.withheld", stalled=stalled)
            notify_status(withheld=stalled)
        self._withheld = stalled
        self.watchdog_ticks += 1

    def _stood_still(self, late: float) -> None:
        """No worker beats while the whole loop stands still: the process stopped (SIGSTOP and
        SIGCONT, a paused VM, swapping) or something blocked the loop. Its workers were judged by
        that time too, and the first look after a 60 s SIGSTOP logged the dispatcher and
        housekeeping "stalled" (an error, the watchdog withheld) when no worker was at fault. The
        time the loop stood still is not counted against a worker; a worker silent before it stays
        silent by what it had."""
        if late < STOOD_STILL_SECONDS:
            return
        log.warning(
            "daemon.stood_still",
            seconds=round(late, 1),
            why="the process was stopped (SIGSTOP, a paused VM, swapping) or its event loop was blocked",
        )
        now = time.monotonic()
        for worker in self.workers.values():
            worker.last_beat = min(worker.last_beat + late, now)
