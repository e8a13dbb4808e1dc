"""The dispatcher's writes that nothing awaits: parts it took back from its memory, and what became of them.

An opt-out, an admin's stop, a long SMS moved to another link, parts that cannot go or give their turn up:
each takes its parts out of the dispatcher's memory and starts a write of their end or their return to the
queue, which the dispatcher does not wait for. `OutcomeRecorder.write` rides out store trouble that passes;
anything else (a damaged page, a constraint, a bug) ended the task, and its done-callback only dropped it:
no line but asyncio's "Task exception was never retrieved" at the next garbage collection, the worker
"running" with no restart, and its parts `active` for the rest of the run (not sent, not ended, no
bounce). A failure is logged here by the task's name, and the dispatcher's run raises it on its next turn
(`raise_failed`): the supervisor logs the crash, and the requeue of orphans before its restart puts those
parts back in the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class BackgroundWrites:
    """Starts the writes, keeps them in `tasks` (which the dispatcher's stop waits for), holds the
    first failure until the run raises it."""

    def __init__(self, tasks: set[asyncio.Task[None]], on_failure: Callable[[], None]) -> None:
        self.tasks = tasks
        self.on_failure = on_failure  # wakes the run, so that it raises the failure now, not in a second
        self.failed: BaseException | None = None

    def __call__(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=f"dispatcher.{name}")
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        log.error(
            "dispatcher.background_failed",
            task=task.get_name(),
            error=f"{type(exc).__name__}: {exc}"[:500],
            note="its parts stay 'active' until the dispatcher's restart puts them back in the queue",
            exc_info=exc,
        )
        if self.failed is None:
            self.failed = exc
        self.on_failure()

    def started(self) -> None:
        """A run (re)starts: what failed before it was put back by the requeue of orphans before it."""
        self.failed = None

    def raise_failed(self) -> None:
        """In the run's turn: a failed write ends the run, as the supervisor's crash, the original
        exception raised (the supervisor reads a damaged file or a lock from it)."""
        if (exc := self.failed) is not None:
            self.failed = None
            raise exc
