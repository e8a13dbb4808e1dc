"""Rate-limited warnings for limits that bite: a flood must not become a flood of log lines."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

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
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def __call__(self, limit: str, **fields: Any) -> None:
        now = self.clock()
        last = self._last.get(limit)
        if last is not None and now - last < self.interval:
            self._suppressed[limit] += 1
            return
        self._last[limit] = now
        log.warning(self.event, limit=limit, suppressed=self._suppressed.pop(limit, 0), **fields)
