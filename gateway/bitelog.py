"""Rate-limited log lines for what a flood repeats: a flood must not become a flood of log lines.

The throttle is the links' own (`smsc.logthrottle`), one kind per limit (`BiteLog`) or per failure
(`FaultLog`). A full disk fails every write the same way, several times per refused mail: logged
each time, 2,000 lines in 40 s buried the first one, and journald's rate limit then dropped the
lines that mattered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)

# A kind quiet for this long logs its traceback again: a new incident, not the same one going on.
RETRACE_AFTER_SECONDS = 600.0


class BiteLog:
    """One warning per limit that bites, at most one per `interval` per limit, counting the rest."""

    def __init__(
        self,
        event: str = "smtp.limit_hit",
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.event = event
        self._throttle = LogThrottle(log, interval, clock)

    def __call__(self, limit: str, **fields: Any) -> None:
        self._throttle.warning(self.event, kind=limit, limit=limit, **fields)


def failure_kind(exc: BaseException) -> str:
    """What makes two failures the same kind: SQLite's error name (SQLITE_FULL), else the type."""
    return getattr(exc, "sqlite_errorname", None) or type(exc).__name__


class FaultLog:
    """Errors a failing store (full disk, I/O errors) repeats for every write: one line per event and
    kind of failure per `interval`, with the count held back in `suppressed` (`LogThrottle`).

    With `traceback`, only the first line of a kind carries it (again once the kind has been quiet
    for `retrace_after`): the same 1.2 kB traceback for each of 200 receipts says nothing new, and
    without one the first line could not show where the failure came from.

    A flood ends without a next line to carry its last count, so once nothing has failed for an
    `interval` the counts still held are logged (`LogThrottle.flush`, on the running event loop):
    the lines and their `suppressed` then add up to every failure."""

    def __init__(
        self,
        logger: Any = log,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        retrace_after: float = RETRACE_AFTER_SECONDS,
    ) -> None:
        self._throttle = LogThrottle(logger, interval, clock)
        self._clock = clock
        self.retrace_after = retrace_after
        self._seen: dict[str, float] = {}  # per kind: when it last failed
        self._flush: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
        self._quiet_from = 0.0  # the loop's time an `interval` after the latest failure

    def error(
        self,
        event: str,
        exc: BaseException,
        *,
        traceback: bool = False,
        kind: str | None = None,
        **fields: Any,
    ) -> None:
        self.emit("error", event, exc, traceback=traceback, kind=kind, **fields)

    def warning(self, event: str, exc: BaseException, *, traceback: bool = False, **fields: Any) -> None:
        self.emit("warning", event, exc, traceback=traceback, **fields)

    def emit(
        self,
        level: str,
        event: str,
        exc: BaseException,
        *,
        traceback: bool,
        kind: str | None = None,
        **fields: Any,
    ) -> None:
        """`kind`: what makes two failures the same, where `failure_kind`'s type alone is too coarse."""
        kind = f"{event}:{kind or failure_kind(exc)}"
        now = self._clock()
        last = self._seen.get(kind)
        self._seen[kind] = now
        if traceback and (last is None or now - last >= max(self.retrace_after, self._throttle.interval)):
            # Quiet for longer than the interval, so the throttle lets this line out.
            fields["exc_info"] = exc
        self._throttle.emit(level, event, kind=kind, **fields)
        self._flush_when_quiet()

    def _flush_when_quiet(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to wait on: the next line of the kind says it
            return
        self._quiet_from = loop.time() + self._throttle.interval
        if self._flush is None or self._flush[0] is not loop:  # (one left on a loop that has ended)
            self._flush = (loop, loop.call_at(self._quiet_from, self._flush_if_quiet, loop))

    def _flush_if_quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.time() < self._quiet_from:  # failed again meanwhile: look again then
            self._flush = (loop, loop.call_at(self._quiet_from, self._flush_if_quiet, loop))
            return
        self._flush = None
        self._throttle.flush()
