"""A link's task (`SmppLink`, `Cimd2Link`): its turns, each one session and the wait before the next,
until the link stops, and the task's end at `stop`.

Only the session was guarded: a fault in the rest of a turn (the back-off, the outage's words, a log
call, the wait) ended the task with no word. The link then said "connecting" for ever, sent nothing and
took no MO, while the daemon went on answering mail with 250; its stop awaited the task and raised the
fault, so the link never said "stopped" either. A turn that fails is now logged with its traceback and
the next follows after the longest back-off: a fault on every turn retries as slowly as an SMSC that is
down, never in a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


def _words(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


async def rest(wake: asyncio.Event, seconds: float) -> None:
    """Wait `seconds` before the next connect, cut short by `wake` (set by `stop`)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)


async def run_turns(
    link: str,
    protocol: str,
    turn: Callable[[bool], Awaitable[None]],
    failed: Callable[[str], None],
    stopping: Callable[[], bool],
    wake: asyncio.Event,
    longest: float,
) -> None:
    """`turn(first)` again and again until `stopping()`. One that raises is logged (`smpp.link_task_failed`,
    `cimd2.…`), told to `failed` (which puts the link back to reconnecting: the status, and the dispatcher,
    would otherwise read the state the fault left) and followed by the next after `longest` seconds."""
    first = True
    while not stopping():
        try:
            await turn(first)
        except Exception as exc:
            error = _words(exc)
            log.error(f"{protocol}.link_task_failed", link=link, error=error, retry_in=longest, exc_info=exc)
            failed(error)
            await rest(wake, longest)
        first = False


async def ended(task: asyncio.Task[None], link: str, protocol: str) -> None:
    """Cancel the link's task and wait for its end: an error it ended with is logged, not raised, so that
    `stop` still reaches its "stopped"."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        log.error(f"{protocol}.link_task_failed", link=link, error=_words(exc), exc_info=exc)
