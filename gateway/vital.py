"""The daemon's own tasks that no supervisor restarts (`gateway.supervisor.Supervisor.run` itself,
the database file check, the panel's server), and what their end while the daemon runs means: the
daemon stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class DaemonTaskLost(Exception):
    """One of the daemon's own tasks outside the supervisor's care (the supervisor itself, the
    database file check, the panel's server) ended while it ran: `smsgw run` stops in order and exits
    with status 1, so that systemd's `Restart=on-failure` starts it again whole."""


class Vital:
    """The tasks no supervisor restarts. An error escaping the supervisor's TaskGroup cancelled
    every worker, and the daemon went on listening, taking connections it never greeted, `status`
    saying "running"; the stop then re-raised it and skipped closing the store. Their end before the
    stop is logged and stops the daemon (`stop`) instead."""

    def __init__(self, stop: Callable[[], None], stopping: Callable[[], bool]) -> None:
        self.lost: str | None = None
        self._stop = stop
        self._stopping = stopping
        self._told: set[asyncio.Task[None]] = set()

    def watch(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping():
            return
        exc = task.exception()
        self._told.add(task)
        why = _said(exc)[:500] if exc else "returned"
        self.lost = f"{task.get_name()} ended: {why}"
        log.error("daemon.task_lost", task=task.get_name(), error=self.lost, exc_info=exc)
        self._stop()

    async def end(self, task: asyncio.Task[None]) -> None:
        """Cancel `task` and wait for it without raising its error: the rest of the stop (the
        store's drain and close, the status file) must run after any end of it."""
        task.cancel()
        await asyncio.wait({task})
        if task.cancelled():
            return
        if (exc := task.exception()) is not None and task not in self._told:
            log.error("daemon.task_failed_at_stop", task=task.get_name(), error=str(exc)[:500], exc_info=exc)


def _said(exc: BaseException) -> str:
    """An error in words; a TaskGroup's by the errors inside it, which are what went wrong."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_said(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
