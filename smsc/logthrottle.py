"""One log line per kind of trouble per second, for the warnings a peer can trigger at will.

An SMSC that floods error PDUs (200,000 generic_nacks, 100,000 CIMD2 NACKs) made one warning line
each: tens of megabytes of log that hid everything else and cost more than the PDUs themselves. Each
connection keeps a `LogThrottle`: the first line of a kind goes out, the rest within `interval` are
counted, and the next line of that kind (or `flush`, when the connection ends) says how many were
held back. Kinds are counted apart, so that a flood of one never hides the first line of another.
The gateway's limits log through it too (`gateway.bitelog`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

INTERVAL = 1.0

# Every throttle of the process, so that a stop can say the counts still held back (`flush_all`).
_LIVE: weakref.WeakSet[LogThrottle] = weakref.WeakSet()


def flush_all() -> None:
    """At a process's stop: log the counts every throttle still holds, which no next line would say
    (a connection's own throttle says them when it ends; the process-wide ones had no such moment)."""
    for live in list(_LIVE):
        live.flush()


class LogThrottle:
    """Rate-limited warnings and infos of one connection, per kind; see the module docstring.

    `clock` is injectable (monotonic seconds) so that tests need not sleep through the interval."""

    __slots__ = ("__weakref__", "_clock", "_held", "_log", "_next", "interval")

    def __init__(
        self, logger: Any, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = logger
        self.interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}
        # Per kind: (lines held back, level and event of the last one, its fields).
        self._held: dict[str, tuple[int, str, str, dict[str, Any]]] = {}
        _LIVE.add(self)

    def warning(self, event: str, *, kind: str | None = None, **fields: Any) -> None:
        self.emit("warning", event, kind=kind, **fields)

    def info(self, event: str, *, kind: str | None = None, **fields: Any) -> None:
        self.emit("info", event, kind=kind, **fields)

    def emit(self, level: str, event: str, *, kind: str | None = None, **fields: Any) -> None:
        """Log `event` unless a line of its kind (`kind`, else the event) went out within the interval.

        A held-back line keeps its fields, so the summary `flush` writes names the last of them."""
        key = kind or event
        now = self._clock()
        if now < self._next.get(key, 0.0):
            held = self._held.get(key)
            self._held[key] = ((held[0] if held else 0) + 1, level, event, fields)
            return
        held = self._held.pop(key, None)
        getattr(self._log, level)(event, suppressed=held[0] if held else 0, **fields)
        self._next[key] = now + self.interval

    def flush(self) -> None:
        """Log the count of every kind still held back (the connection ends: no next line would say it)."""
        held, self._held = self._held, {}
        for count, level, event, fields in held.values():
            getattr(self._log, level)(event, suppressed=count, summary=True, **fields)
