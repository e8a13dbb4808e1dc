"""The store's counts for `/metrics` and the panel's long reads, off the event loop.

A scrape counts every message and part by state: a GROUP BY over the whole history. On the loop's
connection that would stop every SMTP session and link for as long, at every scrape. The counts are
read instead on a thread of their own (`gateway.store.reader`). The dashboard's counts of the day and
the CSV export read through the same thread (`run`), for the same reason.

The counts read covering indexes (migrations 28 and 62), not the tables: from the tables a year of
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
from dataclasses import dataclass
from pathlib import Path

from gateway.store.counted import MO_UNFINISHED_SQL
from gateway.store.reader import ReadThread
from gateway.store.settling import FINAL_PART

FRESH_SECONDS = 5.0  # Prometheus scrapes every 15 s or more; an admin's reload sees 5 s old counts


@dataclass(frozen=True, slots=True)
class StoreCounts:
    messages: list[tuple[str, str, int]]  # account, state, count
    parts: list[tuple[str, str, int]]  # link, state, count
    outbox: list[tuple[str, int]]  # state, count
    outbox_oldest: float | None  # when the oldest mail still waiting for the relay was queued
    mo: list[tuple[str, int]]  # state, count


# Each count reads a covering index of its table (messages_counts, migration 28: `WHERE id > 0` is
# what lets a query use it; parts_link_state_smsc, migration 62, which the receipts are matched by
# too), grouped by the index's own columns so that the index's order does the grouping. The names and
# '-' come after, on the few groups: grouped by COALESCE(a.name, '-'), the count joined and sorted
# every row. The outer GROUP BY merges groups that read alike ('-': no account or a removed one, no
# link or a link named '-'): the labels of a metric must not repeat.
# What left a final state is added back (`purged_counts`, migration 31: rows the retention purge
# deleted, SMS `smsgw queue retry` sent again): the counters fell by each night's purge, which
# Prometheus reads as a counter reset and `rate()` as everything counted arriving at once. A part's
# entry may be negative: a part already final that a link type switch moved to another link's name
# stays counted under the link that finished it, and is taken off the other (`gateway.linkcounted`).
# Only a counter's states are added back: a waiting state is a gauge's, of the rows there now. The
# purge of releases up to 0.2.25 kept a part still awaiting its report (a long SMS failed) as counted
# `submitted`, and an MO part never joined as `segment`: read back, those rows kept the gauges
# smsgw_parts_waiting and smsgw_mo_waiting that much too high for good.
_COUNTED_PART = f"state IN ({', '.join(map(repr, FINAL_PART))})"
_COUNTED_MO = f"state NOT IN {MO_UNFINISHED_SQL}"
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
    "  UNION ALL SELECT NULLIF(label, ''), state, n FROM purged_counts"
    f"  WHERE metric = 'parts' AND {_COUNTED_PART}) g"
    " GROUP BY 1, 2"
)
MO = (
    "SELECT state, SUM(n) FROM (SELECT state, COUNT(*) AS n FROM mo GROUP BY state"
    f" UNION ALL SELECT state, n FROM purged_counts WHERE metric = 'mo' AND {_COUNTED_MO}) GROUP BY state"
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


class CountReader(ReadThread):
    """The counts of /metrics on their own reader thread, shared by the scrapes of `FRESH_SECONDS`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "metrics")
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
