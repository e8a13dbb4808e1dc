"""The store's counts for `/metrics` and the panel's long reads, off the event loop.

A scrape counts every message and part by state: a GROUP BY over the whole history, about 1.6 s
on this machine with a million messages kept. On the loop's connection that would stop every SMTP
session and link for as long, at every scrape. The counts are read instead in a thread of their
own, on a connection that only that thread uses and that may only read (`query_only`); in WAL
mode a reader neither waits for the daemon's writes nor holds them up. The dashboard's counts of
the day and the CSV export read through the same thread (`run`), for the same reason.

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
    mo: list[tuple[str, int]]  # state, count


def count(conn: sqlite3.Connection) -> StoreCounts:
    return StoreCounts(
        messages=conn.execute(
            "SELECT COALESCE(a.name, '-'), m.state, COUNT(*) FROM messages m"
            " LEFT JOIN accounts a ON a.id = m.account_id GROUP BY 1, 2"
        ).fetchall(),
        parts=conn.execute("SELECT COALESCE(link, '-'), state, COUNT(*) FROM parts GROUP BY 1, 2").fetchall(),
        outbox=conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall(),
        mo=conn.execute("SELECT state, COUNT(*) FROM mo GROUP BY state").fetchall(),
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
