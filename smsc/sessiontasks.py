"""A link session's own tasks beside its reader (the keepalive, CIMD2's taker of deliveries): one that
ends with an error is logged with its traceback and ends the session, which the link makes again.

They were gathered only at the session's end, with `return_exceptions=True`, and their errors dropped:
a keepalive ended by a fault left the session with none for the rest of its life (an SMSC that drops
idle sessions dropped it, a peer gone silent went unnoticed), and CIMD2's taker of deliveries ended
took no MO or receipt any more while the link said it was up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


class Closable(Protocol):
    def close(self, reason: str, *, ours: bool = False) -> None: ...


class SessionTasks:
    """Starts the tasks of the session of `conn`; `event` names a failure in the log (`smpp.…`, `cimd2.…`)."""

    def __init__(self, conn: Closable, event: str, link: str) -> None:
        self.conn, self.event, self.link = conn, event, link

    def __call__(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=f"{self.link}:{name}")
        task.add_done_callback(lambda task: self._ended(task, name))
        return task

    def _ended(self, task: asyncio.Task[Any], name: str) -> None:
        if task.cancelled() or (exc := task.exception()) is None:
            return
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.error(self.event, link=self.link, task=name, error=error, exc_info=exc)
        self.conn.close(f"{name} failed: {error}", ours=True)  # we end it: no submit on the wire is blamed
