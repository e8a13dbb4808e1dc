"""The warnings of refused panel logins, at most one a second per kind, the rest counted.

A failed or locked login wrote one warning each: one connection posting the login form in a loop
after its lock made 1,350 lines a second (about 800 MB an hour), enough to fill the disk or to
trip journald's rate limit, which then dropped the daemon's real errors too. They now go through
the throttle of the panel's other warnings (`smsc.logthrottle`, as `web.limit_hit` and
`web.http_warning`): the first line of a kind goes out at once, the rest within the second are
counted, and the next line of that kind says how many were left out (`suppressed`). Kinds are the
event and its reason, not the address: a key per address would let someone rotating addresses (an
IPv6 /48 holds 65,536 /64s) make a line of every request again, and a table of them without end.

A flood ends without a next line to say its last count, so once no refusal has come for an
interval the counts still held are logged (`summary`): the lines and their `suppressed` add up to
every refusal. A stop says them too (`smsc.logthrottle.flush_all`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from smsc.logthrottle import INTERVAL, LogThrottle

log = structlog.get_logger(__name__)


class LoginLog:
    """`web.login_refused` and `web.login_failed`, throttled per event and reason; one per panel."""

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._throttle = LogThrottle(log, interval, clock)
        self._quiet_from = 0.0  # the loop's time an interval after the latest refusal
        self._flush: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    def refused(self, ip: str | None, reason: str) -> None:
        """An attempt the guard did not even check (locked, or too many in flight)."""
        self._warn("web.login_refused", kind=f"refused:{reason}", ip=ip, reason=reason)

    def failed(self, ip: str | None, locked: bool) -> None:
        """A checked attempt that failed; `locked` when this failure started a lockout."""
        self._warn("web.login_failed", kind=f"failed:{locked}", ip=ip, locked=locked)

    def _warn(self, event: str, *, kind: str, **fields: Any) -> None:
        self._throttle.warning(event, kind=kind, **fields)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to wait on: the next line of the kind, or the stop, says it
            return
        self._quiet_from = loop.time() + self._throttle.interval
        if self._flush is None or self._flush[0] is not loop:
            self._flush = (loop, loop.call_at(self._quiet_from, self._flush_if_quiet, loop))

    def _flush_if_quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.time() < self._quiet_from:  # refused again meanwhile: look again then
            self._flush = (loop, loop.call_at(self._quiet_from, self._flush_if_quiet, loop))
            return
        self._flush = None
        self._throttle.flush()
