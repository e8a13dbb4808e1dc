"""Reads too long for the event loop, on a thread of their own with a connection only it uses.

On the loop's connection a read that walks a big index (the counts of /metrics, the queue's depth
with a million SMS waiting) stops every SMTP session and link for as long. Such reads go to a thread
of their own instead, on a connection that may only read (`query_only`); in WAL mode a reader
neither waits for the daemon's writes nor blocks them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ReadThread:
    """A thread and its read-only connection to the database at `path`, opened at the first read."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on the reader's connection in its thread, inside one read transaction."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._read, work)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:  # in the thread
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            self._conn.execute("PRAGMA query_only=ON")
        # One read transaction: what `work` reads describes one moment.
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
        """Blocks until the read under way ends: from a thread, or the loop before it stops."""
        if self._executor is not None:
            self._executor.submit(self._close_connection).result()
            self._executor.shutdown(wait=True)
            self._executor = None
