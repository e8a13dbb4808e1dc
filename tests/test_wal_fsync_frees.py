"""The WAL fsync thread lets go of a batch once it has handed the batch's outcome to the loop.

It kept its reference until the next fsync was asked for, so every batch's pieces, futures and
results were freed in that thread, under the GIL, between the next request's wake-up and its fsync
(deallocations made up most of that thread's own Python time under load, on objects the loop's thread
had made). Freed on the loop's thread, they cost the process less and hold the next fsync up not at all.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.store.db import Store
from tests.test_store import Clock


class _Result:
    """A write's result that says on which thread it is freed."""

    def __init__(self, freed_on: list[str]) -> None:
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.current_thread().name)


async def test_a_batch_is_freed_on_the_loops_thread_not_the_fsync_threads(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock(), group_fsync=True)
    store.db.serve()
    freed_on: list[str] = []
    try:
        for _ in range(3):
            # Each write is answered after its own fsync; the next one is asked for after that.
            result = await store.write(lambda: _Result(freed_on))
            del result
        await store.write(lambda: None)
        assert freed_on == [threading.current_thread().name] * 3
    finally:
        store.close()
