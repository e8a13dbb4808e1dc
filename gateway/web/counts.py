"""The store's counts for `/metrics` and the panel's long reads, off the event loop.

A scrape counts every message and part by state: a GROUP BY over the whole history. On the loop's
connection that would stop every SMTP session and link for as long, at every scrape. The counts are
read instead in a thread of their own, on a connection that only that thread uses and that may only
read (`query_only`); in WAL mode a reader neither waits for the daemon's writes nor blocks them. The
dashboard's counts of the day and the CSV export read through the same thread (`run`), for the same
reason.

The counts read indexes of their own (migration 28), not the tables: from the tables a year of
traffic (2 M messages, every part's payload read) took 14 s a scrape, past Prometheus's 10 s scrape
timeout, and for as long the count's read snapshot kept the WAL from being checkpointed to its end,
so the checkpoint after it held the daemon's writes (2 s a scrape). From the indexes: 0.6 s.

Scrapes share their counts: one count at a time, and its result serves every scrape for
`FRESH_SECONDS`. Each scrape queued a count of its own on the one reader thread, and kept it
there after its client had gone: 400 scrapes that hung up at once held the dashboard and every
search behind them for 20 s (at a million messages, for minutes).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

FRESH_SECONDS = 5.0  # Prometheus scrapes every 15 s or more; an admin's reload sees 5 s old counts


@dataclass(frozen=True, slots=True)
class StoreCounts:
    messages: list[tuple[str, str, int]]  # account, state, count
    parts: list[tuple[str, str, int]]  # link, state, count
    outbox: list[tuple[str, int]]  # state, count
    outbox_oldest: float | None  # when the oldest mail still waiting for the relay was queued
    mo: list[tuple[str, int]]  # state, count


# Each count reads its table's counts index (migration 28; `WHERE id > 0` is what lets a query use
# it), grouped by the index's own columns so that the index's order does the grouping. The names and
# '-' come after, on the few groups: grouped by COALESCE(a.name, '-'), the count joined and sorted
# every row. The outer GROUP BY merges groups that read alike ('-': no account or a removed one, no
# link or a link named '-'): the labels of a metric must not repeat.
# What left a final state is added back (`purged_counts`, migration 31: rows the retention purge
# deleted, SMS `smsgw queue retry` sent again): the counters fell by each night's purge, which
# Prometheus reads as a counter reset and `rate()` as everything counted arriving at once.
MESSAGES = (
    "SELECT COALESCE(a.name, '-'), g.state, SUM(g.n) FROM"
    " (SELECT account_id, state, COUNT(*) AS n FROM messages WHERE id > 0 GROUP BY account_id, state"
    "  UNION ALL SELECT CAST(NULLIF(label, '') AS INTEGER), state, n FROM purged_counts"
    "  WHERE metric = 'messages') g"
    " LEFT JOIN accounts a ON a.id = g.account_id GROUP BY 1, 2"
)
PARTS = (
    "SELECT COALESCE(g.link, '-'), g.state, SUM(g.n) FROM"
    " (SELECT link, state, COUNT(*) AS n FROM parts WHERE id > 0 GROUP BY link, state"
    "  UNION ALL SELECT NULLIF(label, ''), state, n FROM purged_counts WHERE metric = 'parts') g"
    " GROUP BY 1, 2"
)
MO = (
    "SELECT state, SUM(n) FROM (SELECT state, COUNT(*) AS n FROM mo GROUP BY state"
    " UNION ALL SELECT state, n FROM purged_counts WHERE metric = 'mo') GROUP BY state"
)


def count(conn: sqlite3.Connection) -> StoreCounts:
    """Every count in one read; each reads an index, never a table, as its snapshot holds the WAL."""
    return StoreCounts(
        messages=conn.execute(MESSAGES).fetchall(),
        parts=conn.execute(PARTS).fetchall(),
        outbox=conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall(),
        mo=conn.execute(MO).fetchall(),
        outbox_oldest=conn.execute(
            "SELECT MIN(created_at) FROM outbox WHERE state IN ('queued', 'active')"
        ).fetchone()[0],
    )


class CountReader:
    """A thread and its read-only connection to the database at `path`, opened at the first read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._counting: asyncio.Future[StoreCounts] | None = None
        self._counted: tuple[float, StoreCounts] | None = None  # loop time, counts

    async def read(self) -> StoreCounts:
        """The counts, at most `FRESH_SECONDS` old; a count under way is awaited, not repeated."""
        loop = asyncio.get_running_loop()
        if self._counted is not None and loop.time() - self._counted[0] < FRESH_SECONDS:
            return self._counted[1]
        if self._counting is None:
            self._counting = asyncio.ensure_future(self._count())
        # Shielded: a scrape whose client hangs up does not cancel the count the others wait for.
        return await asyncio.shield(self._counting)

    async def _count(self) -> StoreCounts:
        try:
            counts = await self.run(count)
            self._counted = (asyncio.get_running_loop().time(), counts)
            return counts
        finally:
            self._counting = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on the reader's connection in its thread, inside one read transaction."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._read, work)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:  # in the thread
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            self._conn.execute("PRAGMA query_only=ON")
        # One read transaction: the four counts describe the same moment.
        self._conn.execute("BEGIN")
        try:
            return work(self._conn)
        finally:
            self._conn.execute("COMMIT")

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.submit(self._close_connection).result()
            self._executor.shutdown(wait=True)
            self._executor = None
