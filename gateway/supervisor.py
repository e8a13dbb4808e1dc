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
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.bitelog import FaultLog
from gateway.crashloop import loop_crashes, note_crash, note_stop
from gateway.sdnotify import sd_notify, watchdog_interval

log = structlog.get_logger(__name__)

STALL_AFTER_SECONDS = 60.0  # a worker silent for longer is stalled and the watchdog is withheld
BACKOFF_MIN_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0  # below the stall limit: a crash-looping worker is not also "stalled"
# The watchdog's own wake-up this much late means the whole loop stood still (see `_watchdog`).
STOOD_STILL_SECONDS = 5.0
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
    # A relay port's process (`gateway.intake_workers`): whether it serves the port now. None: no port.
    serving: Callable[[], bool] | None = None

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
            # A relay port's process: whether it serves the port, which status judges as /healthz does.
            **({} if self.serving is None else {"serving": self.serving()}),
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
        waited: str | None = None  # the last failure's store wait (`_store_waits`), if it was one
        while not self.stopping:
            started = worker.up_since = time.monotonic()  # its run, for the loop's end (crashloop)
            try:
                if not first and worker.before_restart is not None:
                    await worker.before_restart()
                worker.last_beat = time.monotonic()
                worker.state = "running"
                if not first:
                    # After a store wait, each second on a full disk: its own line (a minute's) says so.
                    (log.debug if waited else log.warning)(
                        "worker.restarted", worker=worker.name, restarts=worker.restarts
                    )
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
                waits = waited = _store_waits(exc)
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
