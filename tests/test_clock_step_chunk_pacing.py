"""A step back's chunks are paced on what each held the event loop (its statements and its batch's
COMMIT, `gateway.store.writehold.Hold`), not on its whole write from the await to the answer.

The whole write also waits for the WAL's fsync, which runs in a thread off the loop, and for the writes
queued before it: a slow or busy disk shrank every chunk to the fewest ids, and under load the move took
1.5-3x as long for no smaller stall of the loop. Real SQLite files; the disk made slow by an fsync that
sleeps in the WAL fsync thread alone (a disk busy with other writers' data).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gateway import stepmoves
from gateway.store.db import Store
from gateway.store.writehold import Hold
from tests.stepback_world import DAY, fill
from tests.test_clock_step import Monotonic, housekeeping
from tests.test_store import Clock

FSYNC_SECONDS = 1.0  # the slow disk's fsync: twice the loop's time a chunk aims at, here
CHUNK_SECONDS = 0.5


async def test_a_slow_disk_does_not_shrink_a_step_backs_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite"
    Store.open(path).close()
    fill(path, Clock().t, 3.0, 900, 60)
    fsync = os.fsync

    def slow(fd: int) -> None:
        if threading.current_thread().name == "wal-fsync":
            time.sleep(FSYNC_SECONDS)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", slow)
    monkeypatch.setattr(stepmoves, "CHUNK_SECONDS", CHUNK_SECONDS)
    sizes: list[tuple[str, int]] = []
    took = stepmoves.ChunkSize.took

    def noted(self: stepmoves.ChunkSize, seconds: float) -> None:
        sizes.append((self.phase, self.ids))
        took(self, seconds)

    monkeypatch.setattr(stepmoves.ChunkSize, "took", noted)
    clock, mono = Clock(), Monotonic()
    store = Store.open(path, clock=clock, group_fsync=True)  # as the daemon's: the fsync off the loop
    store.db.serve()
    hk = housekeeping(store, mono)
    await hk.check_clock()
    clock.t -= 2 * DAY
    mono.t += 2.0
    assert await hk.check_clock() == pytest.approx(2 * DAY + 2.0)
    store.close()
    # The SMS' chunks grew from the first's 500 ids (each held the loop far less than 0.5 s); paced on
    # the whole write, each was at least the fsync's 1 s and the next was a quarter to half as big.
    sms = [ids for phase, ids in sizes if phase == "sms"]
    assert sms[:2] == [stepmoves.FIRST_CHUNK, stepmoves.FIRST_CHUNK * 3 // 2], sizes


async def test_a_write_learns_its_statements_and_its_batchs_commit(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock(), group_fsync=True)
    store.db.serve()
    hold = Hold()

    def work() -> int:
        return store.db.conn.execute("INSERT INTO billing_state (key, value) VALUES ('k', 'v')").rowcount

    assert await store.write(store.db.timed(work, hold)) == 1
    assert hold.statements > 0.0 and hold.commit > 0.0
    assert hold.seconds == hold.statements + hold.commit
    store.close()
