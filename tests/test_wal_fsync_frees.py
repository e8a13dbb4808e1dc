"""The WAL fsync thread lets go of a batch once it has handed the batch's outcome to the loop.

It kept its reference until the next fsync was asked for, so every batch's pieces, futures and
results were freed in that thread, under the GIL, between the next request's wake-up and its fsync
(deallocations made up most of that thread's own Python time under load, on objects the loop's thread
had made). Freed on the loop's thread, they cost the process less and hold the next fsync up not at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from gateway.store.db import Store
from tests.test_store import Clock


class _Result:
    """A write's result that says on which thread it is freed."""

    def __init__(self, freed_on: list[str]) -> None:
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.current_thread().name)


async def freed_on(store: Store) -> list[str]:
    """The threads three writes' results were freed on, once a fourth write has run. Each write is
    answered after its own fsync; the next one is asked for after that."""
    threads: list[str] = []
    for _ in range(3):
        result = await store.write(lambda: _Result(threads))
        del result
    await store.write(lambda: None)
    return threads


async def test_a_batch_is_freed_on_the_loops_thread_not_the_fsync_threads(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock(), group_fsync=True)
    store.db.serve()
    try:
        assert await freed_on(store) == [threading.current_thread().name] * 3
    finally:
        store.close()


async def test_a_batch_is_freed_on_the_loops_thread_when_the_loop_runs_it_at_once(tmp_path: Path) -> None:
    """The loop may run the outcome while the fsync thread is still inside `call_soon_threadsafe`.

    Writing the loop's wake-up socket lets go of the GIL: the loop ran `done` and dropped its
    references before the fsync thread's next line, so the thread's own were the batch's last. Here the
    fsync thread waits, right after handing the outcome over, until the loop has run it.
    """
    store = Store.open(tmp_path / "db.sqlite", clock=Clock(), group_fsync=True)
    store.db.serve()
    loop = asyncio.get_running_loop()
    handed = loop.call_soon_threadsafe

    def hand_and_wait(callback: Callable[..., object], *args: object) -> asyncio.Handle:
        ran = threading.Event()

        def run() -> None:
            # The next turn, once the loop's handle for this one is gone; before the writer resumes.
            loop.call_soon(ran.set)
            callback(*args)

        handle = handed(run)
        if threading.current_thread() is not threading.main_thread():
            assert ran.wait(10)
        return handle

    loop.call_soon_threadsafe = hand_and_wait  # type: ignore[method-assign]
    try:
        assert await freed_on(store) == [threading.current_thread().name] * 3
    finally:
        del loop.call_soon_threadsafe
        store.close()
