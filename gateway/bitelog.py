"""Rate-limited warnings for limits that bite: a flood must not become a flood of log lines.

The throttle is the links' own (`smsc.logthrottle`), one kind per limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)


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
