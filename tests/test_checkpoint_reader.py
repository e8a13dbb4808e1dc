"""A reader holding a snapshot never stalls the daemon's writes: checkpoints go around it.

On a year-sized database (1.2 M mails) SMTP replies stalled 1-2 s while a billing
render or a panel search held its snapshot: the WAL passed the hard bound under 100 mails/s, and
the TRUNCATE it started held every write while it waited up to BUSY_MS for the reader. The reader
here is a real second SQLite connection holding a read transaction on the store's real file; the
writes are the store's own group commits, timed by the wall clock (the stall is SQLite's wait),
the pin's age by an injected one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import structlog.testing

from gateway.store import checkpoint, walpin
from gateway.store.db import Store
from tests.test_disk_full_wal import fill, small_tmpfs
from tests.test_supervision import events
from tests.test_wal_checkpoint import LIMIT, small_wal_store, write_round

MB = 1024 * 1024


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spy_modes(store: Store) -> list[str]:
    """The mode of every checkpoint the store's checkpoint thread runs, in order."""
    modes: list[str] = []
    checkpointer = store.db._checkpointer
    assert checkpointer is not None
    run: Callable[[str], tuple[int, int, int]] = checkpointer.run

    def spy(mode: str) -> tuple[int, int, int]:
        modes.append(mode)
        return run(mode)

    checkpointer.run = spy  # type: ignore[method-assign]
    return modes


async def checkpoint_settled(store: Store) -> None:
    """Until the checkpoint running, if any, has ended and said what it met (and any it began)."""
    while (task := store.db._checkpoint_task) is not None and not task.done():
        await asyncio.sleep(0.01)


def hold_snapshot(path: Path) -> sqlite3.Connection:
    """A reader in a read transaction: a billing render, a panel export, an sqlite3 shell."""
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM t").fetchone()
    return reader


async def test_a_reader_holding_a_snapshot_never_holds_the_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "BUSY_MS", 3_000)  # a TRUNCATE waiting for it would show
    store, wal = await small_wal_store(tmp_path)
    clock = Clock()
    assert store.db._checkpointer is not None
    store.db._checkpointer.pin.monotonic = clock
    modes = spy_modes(store)
    try:
        with structlog.testing.capture_logs() as logs:
            with closing(hold_snapshot(store.db.path)):
                for _round in range(40):  # about 6 MB past the snapshot: 12 × the hard bound
                    await write_round(store)
                    clock.now += 1.0
                await store.drain()
                await checkpoint_settled(store)
                assert os.stat(wal).st_size > 8 * LIMIT  # the reader pins it, as WAL mode must
                # Not one TRUNCATE (each held the writes up to BUSY_MS): PASSIVE ones, holding nothing.
                assert "TRUNCATE" not in modes and "PASSIVE" in modes, modes
                [deferred] = events(logs, "store.checkpoint_deferred")  # said once, naming the cause
                assert "a reader holds an old snapshot" in deferred["cause"]
                assert deferred["wal_bytes"] > checkpoint.HARD_FACTOR * LIMIT
                assert deferred["bound_bytes"] >= checkpoint.READER_FACTOR * LIMIT
                # The operator still hears of it: past 30 s (by the injected clock) of TRUNCATEs
                # held off, `store.wal_pinned` and the status file's note. The pin's age is read as
                # a checkpoint ends, and one starts only when none runs: under load they ended a few
                # rounds apart, and none in the rounds past the 30 s (a CI run). The housekeeping
                # worker's look (`recheck_pinned_wal`, each STATUS_INTERVAL) is what always comes.
                assert store.db._checkpointer.pin.since is not None  # a TRUNCATE held off: counted
                clock.now += walpin.WAL_PINNED_WARN_SECONDS + 1.0  # counted from that first one
                store.db.recheck_pinned_wal()
                await checkpoint_settled(store)
                [pinned] = events(logs, "store.wal_pinned")
                assert pinned["for_seconds"] > walpin.WAL_PINNED_WARN_SECONDS
                assert store.db.wal_pinned() is not None
            # The reader gone: a passive finds the way clear, and a TRUNCATE (the next commit's past
            # the hard bound, or the housekeeping worker's look) cuts the WAL back and says so.
            for _round in range(10):
                await write_round(store)
                store.db.recheck_pinned_wal()  # as the housekeeping worker does each STATUS_INTERVAL
                await store.drain()
                await checkpoint_settled(store)
            assert "TRUNCATE" in modes
            assert os.stat(wal).st_size <= checkpoint.HARD_FACTOR * LIMIT
            assert store.db.wal_pinned() is None
            assert len(events(logs, "store.wal_unpinned")) == 1
    finally:
        store.close()


async def test_past_the_readers_bound_the_writes_wait_for_a_truncate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The WAL may not grow without bound for a reader that never ends: past READER_FACTOR × the
    # limit a TRUNCATE runs with writes held, as at the hard bound before, and says why.
    monkeypatch.setattr(checkpoint, "BUSY_MS", 100)
    monkeypatch.setattr(checkpoint, "READER_FACTOR", 8)
    store, _wal = await small_wal_store(tmp_path)
    modes = spy_modes(store)
    try:
        with structlog.testing.capture_logs() as logs:
            with closing(hold_snapshot(store.db.path)):
                for _round in range(30):  # about 4.7 MB: past 8 × 256 KiB
                    await write_round(store)
                await store.drain()
                assert "TRUNCATE" in modes, modes
                first = modes.index("TRUNCATE")
                assert "PASSIVE" in modes[:first]  # the passive ones first, while under the bound
                held = [e for e in events(logs, "store.checkpoint") if "reader" in e.get("why", "")]
                assert len(held) == 1, held
                assert held[0]["bound_bytes"] == 8 * LIMIT and held[0]["wal_bytes"] > 8 * LIMIT
                assert held[0]["log_level"] == "warning"
    finally:
        store.close()


async def test_a_nearly_full_disk_still_truncates_while_a_reader_is_in_the_way(tmp_path: Path) -> None:
    # On a small state disk the reader's bound is a share of the free room, and the WAL crowding
    # the disk is still cut back (or tried) as before: space comes first, readers or not.
    state = tmp_path / "state"
    with small_tmpfs(state, 12 * MB):
        path = state / "db.sqlite"
        store = Store.open(path, group_fsync=True)
        store.db.serve()
        store.db.limit_wal(LIMIT)
        await store.write(lambda: store.db.conn.execute("CREATE TABLE t (v BLOB)"))
        while (task := store.db._checkpoint_task) is not None and not task.done():
            await asyncio.sleep(0.01)  # the schema's checkpoint, as in small_wal_store
        st = os.statvfs(state)
        free = st.f_bavail * st.f_frsize
        assert store.db.reader_bound() == max(checkpoint.HARD_FACTOR * LIMIT, free // 4)
        assert store.db.reader_bound() < checkpoint.READER_FACTOR * LIMIT
        fill(state / "filler", MB)  # the disk nearly full: 1 MB left
        modes = spy_modes(store)
        try:
            with structlog.testing.capture_logs() as logs:
                with closing(hold_snapshot(path)):
                    for _round in range(8):  # about 1.3 MB of WAL, if it fits
                        try:
                            await write_round(store)
                        except sqlite3.Error:
                            break  # full: the reader keeps the WAL; the point is what was tried
                    await store.drain()
                    assert "TRUNCATE" in modes, modes
                    # Writes held for a TRUNCATE that may wait for the reader, said why: the WAL
                    # crowding the disk, or past the reader's bound (a quarter of the room left).
                    whys = [e.get("why", "") for e in events(logs, "store.checkpoint")]
                    assert whys and all(
                        "nearly full" in why or "room left" in why or "reader" in why for why in whys
                    ), whys
        finally:
            store.close()
