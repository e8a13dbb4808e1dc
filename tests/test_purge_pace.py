"""The retention purge yields to intake: a pause after each chunk in proportion to the chunk's time.

On a year of traffic (1.2 M mails) a catch-up purge of nine months ran its
chunks (56-59 ms each) back to back for 24 minutes, intake falling from 60 to 7.8 mails/s. The purge
here runs on the store's real SQLite file; the chunk's time comes from an injected clock that the
store's writes move, the pauses go to an injected sleep; the last test runs on the real clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway import retentionpurge
from gateway.store import retention
from gateway.store.db import Store
from tests.test_retention import seed_old_mail

T = TypeVar("T")
CUTOFF = time.time() - 90 * 86400


class Clock:
    """A monotonic clock that each write of the store moves by `step` seconds (the chunk's time)."""

    def __init__(self, store: Store, step: float) -> None:
        self.now = 500.0
        self.step = step
        self.writes = 0
        write = store.write

        async def timed(work: Callable[[], T], **kw: Any) -> T:
            result = await write(work, **kw)
            self.now += self.step
            self.writes += 1
            return result

        store.write = timed  # type: ignore[method-assign]

    def __call__(self) -> float:
        return self.now


def old_store(tmp_path: Path, emails: int) -> Store:
    store = Store.open(tmp_path / "db.sqlite")
    seed_old_mail(store.db.conn, emails)
    return store


def count(store: Store, table: str) -> int:
    return int(store.db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_each_chunk_is_followed_by_nine_times_its_own_time(tmp_path: Path) -> None:
    store = old_store(tmp_path, 3 * retention.CHUNK + 5)
    clock = Clock(store, 0.02)  # each chunk takes 20 ms
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    pace = retention.Pace(monotonic=clock, sleep=sleep)
    try:
        removed = await retentionpurge.purge_before(store, CUTOFF, pace=pace)
        assert removed == 3 * retention.CHUNK + 5 and count(store, "emails") == 0
        assert count(store, "dlrs") == 0  # the DLRs' phase ran too, paced as the rest
        # Every write of the purge, the emails' four chunks and the later phases, paused after.
        assert len(pauses) == clock.writes == pace.chunks and clock.writes >= 4
        assert pauses == pytest.approx([0.02 * (1 - retention.DUTY) / retention.DUTY] * len(pauses))
        assert pace.busy / (pace.busy + pace.paused) == pytest.approx(retention.DUTY)
        assert retention.DUTY <= 0.2 and retention.CHUNK <= 50  # the loop's share, and a chunk's size
    finally:
        store.close()


async def test_a_chunk_slowed_by_a_stall_elsewhere_waits_a_bounded_time(tmp_path: Path) -> None:
    store = old_store(tmp_path, 2 * retention.CHUNK)
    clock = Clock(store, 5.0)  # a chunk that waited 5 s behind a checkpoint
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    try:
        await retentionpurge.purge_before(store, CUTOFF, pace=retention.Pace(monotonic=clock, sleep=sleep))
        assert pauses and set(pauses) == {retention.PAUSE_MAX_SECONDS}
        assert count(store, "emails") == 0
    finally:
        store.close()


async def test_on_the_real_clock_the_purge_takes_a_bounded_share_of_the_time(tmp_path: Path) -> None:
    emails = 8 * retention.CHUNK
    store = old_store(tmp_path, emails)
    busy: list[float] = []
    write = store.write

    async def timed(work: Callable[[], T], **kw: Any) -> T:
        started = time.monotonic()
        try:
            return await write(work, **kw)
        finally:
            busy.append(time.monotonic() - started)

    store.write = timed  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        assert await retentionpurge.purge_before(store, CUTOFF) == emails
        elapsed = time.monotonic() - started
        assert len(busy) >= math.ceil(emails / retention.CHUNK)
        # Back to back the purge had the store all the time (share 1.0); now about DUTY of it.
        share = sum(busy) / elapsed
        assert share < 2 * retention.DUTY, f"the purge took {share:.0%} of {elapsed:.2f} s"
    finally:
        store.close()
