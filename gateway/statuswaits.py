"""What systemd's STATUS= adds to the links' count: the routes whose SMS wait and a stuck queue.

Apart from `gateway.housekeeping` because its two reads (the parts pinned to a link, the oldest SMS
due) walk the whole queue: with 100,000 SMS waiting they took 20-30 ms, and on the loop's connection
every SMTP session and link stood still for as long. They go to a reader thread of their own
(`gateway.store.reader`), at most every LOOK_SECONDS and only when they can matter; the line is made
from the last look, and a failing read leaves its part out, never the status file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.cli.status import QUEUE_STUCK_SECONDS
from gateway.configlinks import receipt_siblings
from gateway.routing import unserved
from gateway.store.admin import pinned_waiting
from gateway.store.queueage import queue_oldest
from gateway.store.reader import ReadThread

# A queue is stuck after QUEUE_STUCK_SECONDS (10 min): a look every 30 s says it in time.
LOOK_SECONDS = 30.0


def _up(status: dict[str, Any]) -> set[str]:
    return {name for name, link in status.get("links", {}).items() if link.get("state") == "active"}


class WaitingLook:
    """The last look at what waits, refreshed off the loop (`refresh`), read by `said`."""

    def __init__(self, reads: ReadThread) -> None:
        self.reads = reads
        self._at: float | None = None  # monotonic time of the last look
        self._pinned: dict[str, int] = {}
        self._oldest: float | None = None  # when the oldest SMS due was accepted

    async def refresh(self, status: dict[str, Any], now: float, wall: float) -> None:
        """Look again if LOOK_SECONDS have passed since the last look (`status`: the last written)."""
        if self._at is not None and now - self._at < LOOK_SECONDS:
            return
        self._at = now
        up = _up(status)
        pinned_too = bool(up and set(status.get("links", {})) - up)  # a link down beside one up
        queued = bool(status.get("queued"))

        def look(conn: sqlite3.Connection) -> tuple[dict[str, int], float | None]:
            pinned = pinned_waiting(conn) if pinned_too else {}
            return pinned, (queue_oldest(conn, wall) if queued else None)

        try:
            self._pinned, self._oldest = await self.reads.run(look)
        except sqlite3.Error:
            self._pinned, self._oldest = {}, None

    def said(self, status: dict[str, Any], config: Any, wall: float) -> tuple[list[str], bool]:
        """The routes whose SMS wait (as `smsgw status` words them) and whether an SMS due has waited
        past QUEUE_STUCK_SECONDS: STATUS= said "links up 1/2" as for a spare link down while an
        exclusive prefix's SMS, or a premium answer pinned to the link down, waited."""
        stuck = self._oldest is not None and wall - self._oldest > QUEUE_STUCK_SECONDS
        up = _up(status)
        routes = config.routes() if config is not None else []
        if not up or not routes:  # with no link up at all, "links up 0/N" says it
            return [], stuck
        siblings = receipt_siblings(config.smsc) if config is not None else {}
        return unserved(routes, up.__contains__, self._pinned, siblings), stuck
