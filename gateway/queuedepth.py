"""How many SMS parts wait to go: the queue's high-water mark refuses new mail by it (451 4.3.1),
and `smsgw status` shows it.

A COUNT over the waiting parts reads every one of them: 10-30 ms with 200,000 waiting (the default
mark, which a campaign queued behind an SMSC outage reaches), once a second on the event loop, each
time a stall of every SMTP session and link (a mark raised to a million: 0.15 s). It is counted on a
reader thread instead, and the longer a count takes the less often it runs (a twentieth of the time
at most): a big queue's mark is read a second or more late, which a mark far above any one mail allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from gateway.store.admin import waiting_parts
from gateway.store.reader import ReadThread

log = structlog.get_logger(__name__)

EVERY_SECONDS = 1.0  # at least this long between two counts
SHARE = 20  # and at least this many times as long as the last count took


class QueueDepth:
    """The last count of waiting parts, refreshed off the loop; `value` is 0 until the first count."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.value = 0
        self._reader = ReadThread(path, "queue-depth")
        self._clock = clock
        self._next = 0.0
        self._counting: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        """Start a count if none is under way and the last one is old enough (cheap otherwise)."""
        if self._counting is None and self._clock() >= self._next:
            self._counting = asyncio.create_task(self._count(), name="queue-depth")

    async def _count(self) -> None:
        started = self._clock()
        try:
            self.value = await self._reader.run(waiting_parts)
        except Exception as e:  # the last figure stands; the store's trouble is told by its writes
            log.warning("queue.depth_unread", error=str(e))
        finally:
            took = self._clock() - started
            self._next = self._clock() + max(EVERY_SECONDS, SHARE * took)
            self._counting = None

    async def close(self) -> None:
        if self._counting is not None:
            await asyncio.gather(self._counting, return_exceptions=True)
        await asyncio.to_thread(self._reader.close)
