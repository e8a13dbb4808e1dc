"""One log line per kind of trouble per second, for the warnings a peer can trigger at will.

An SMSC that floods error PDUs (200,000 generic_nacks, 100,000 CIMD2 NACKs) made one warning line
each: tens of megabytes of log that hid everything else and cost more than the PDUs themselves. Each
connection keeps a `LogThrottle`: the first line of a kind goes out, the rest within `interval` are
counted, and the next line of that kind (or `flush`, when the connection ends) says how many were
held back. Kinds are counted apart, so that a flood of one never hides the first line of another.
The gateway's limits log through it too (`gateway.bitelog`). A throttle made with `burst` above 1
lets that many lines of a kind out per interval before it holds the rest back: for an event an
admin reads one by one in normal running (the store's `dlr.unmatched`), where a flood must still be
a few lines and a count.

A throttle made with `when_quiet` says a kind's held-back count once its interval has passed, on
the running event loop, instead of waiting for the next line of that kind or the stop: the relay's
refusals, keyed per sender, had a stranger's 19 held-back refusals said minutes later, on a line
about another sender. Its kinds are bounded (`max_kinds`): past that many at once, the rest are
counted together under their event (`others=True`), naming none of them, so that a flood of made-up
senders is neither a line each nor memory without end.
"""

from __future__ import annotations

import asyncio
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

    __slots__ = (
        "__weakref__", "_clock", "_held", "_log", "_next", "_said", "_timer", "burst", "interval",
        "max_kinds", "when_quiet",
    )  # fmt: skip

    def __init__(
        self,
        logger: Any,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        *,
        when_quiet: bool = False,
        max_kinds: int | None = None,
        burst: int = 1,
    ) -> None:
        self._log = logger
        self.interval = interval
        self._clock = clock
        self.when_quiet = when_quiet
        self.max_kinds = max_kinds
        self.burst = burst
        self._said: dict[str, int] = {}  # per kind, the lines said in its interval (`burst` above 1 only)
        self._timer: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
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
        others = False
        if self.max_kinds is not None and key not in self._next and len(self._next) >= self.max_kinds:
            self._forget_past(now)
            if len(self._next) >= self.max_kinds:
                key, fields, others = f"{event}:others", {"others": True}, True
                self._next.setdefault(key, now + self.interval)  # said when quiet, never at once
        if now < self._next.get(key, 0.0):
            said = self._said.get(key, 1)
            if said < self.burst and key not in self._held and not others:
                self._said[key] = said + 1
                getattr(self._log, level)(event, suppressed=0, **fields)
                return
            held = self._held.get(key)
            self._held[key] = ((held[0] if held else 0) + 1, level, event, fields)
            if self.when_quiet:
                self._say_later(self._next[key] - now)
            return
        held = self._held.pop(key, None)
        getattr(self._log, level)(event, suppressed=held[0] if held else 0, **fields)
        self._next[key] = now + self.interval
        if self.burst > 1:
            self._said[key] = 1

    def _say_later(self, delay: float) -> None:
        """One timer for the throttle, at the earliest held kind's end of interval."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the next line of the kind, or the stop, says it
            return
        if self._timer is not None and self._timer[0] is loop:  # (one left on a loop that ended: anew)
            return
        # Not sooner than a tenth of the interval: a clock a test holds still must not spin the loop.
        self._timer = (loop, loop.call_later(max(delay, self.interval / 10), self._say_due))

    def _say_due(self) -> None:
        """The counts of the kinds whose interval has passed, each on its own line (`summary`)."""
        self._timer = None
        now = self._clock()
        later: float | None = None
        for key, (count, level, event, fields) in list(self._held.items()):
            due = self._next.get(key, 0.0)
            if now < due:
                later = due if later is None else min(later, due)
                continue
            del self._held[key]
            getattr(self._log, level)(event, suppressed=count, summary=True, **fields)
            self._next[key] = now + self.interval  # the summary is the kind's line of this interval
            if self.burst > 1:
                self._said[key] = 1
        self._forget_past(now)
        if later is not None:
            self._say_later(later - now)

    def _forget_past(self, now: float) -> None:
        """Kinds whose interval has passed with nothing held: their next line goes out anyway."""
        for key in [k for k, until in self._next.items() if until <= now and k not in self._held]:
            del self._next[key]
            self._said.pop(key, None)

    def flush(self) -> None:
        """Log the count of every kind still held back (the connection ends: no next line would say it)."""
        held, self._held = self._held, {}
        for count, level, event, fields in held.values():
            getattr(self._log, level)(event, suppressed=count, summary=True, **fields)
