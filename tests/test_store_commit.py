# ruff: noqa: F811  (the tests take test_store's `store` fixture, imported by name)
"""How the store commits: one thread owns the connection, after-commit callbacks wait for the commit (and
the group fsync), writes arriving during an fsync share the next transaction, and a failed fsync, a
database error at BEGIN or a BaseException fails its batch instead of leaving writers waiting.
Split from test_store.py by subject: these are the write path's promises, not the queue's."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.smtp.accept import accept
from gateway.store.commit import UNSYNCED
from gateway.store.db import Store, StoreError, StoreReplaced
from tests.test_store import (
    Clock,
    acceptance,
    store,  # noqa: F401  (the fixture)
)


def test_use_from_another_thread_raises(store: Store) -> None:
    # The connection belongs to the thread that opened it: a purge or any verb run in a worker
    # thread would share the loop's transaction, so it is refused loudly instead of working.
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            store.queue.claim_due(10)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(10)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "thread" in str(errors[0])
    assert store.queue.claim_due(10) == []  # the owner thread still works


async def test_after_commit_runs_once_committed_and_not_on_rollback(store: Store) -> None:
    # Callbacks registered inside a transaction fire after COMMIT; a failed write() piece drops its own.
    seen: list[str] = []
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    def ok() -> None:
        store.db.after_commit(lambda: seen.append(f"ok after {statements[-1]}"))

    def failing() -> None:
        store.db.after_commit(lambda: seen.append("failed"))
        raise ValueError("boom")

    results = await asyncio.gather(store.write(ok), store.write(failing), return_exceptions=True)
    store.db.conn.set_trace_callback(None)
    assert isinstance(results[1], ValueError)
    assert seen == ["ok after COMMIT"]
    with pytest.raises(ValueError), store.db.transaction():
        store.db.after_commit(lambda: seen.append("rolled back"))
        raise ValueError("boom")
    assert seen == ["ok after COMMIT"]


async def test_after_commit_waits_for_the_group_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With group fsync the callback runs only once the WAL holding the commit is on disk.
    s = Store.open(tmp_path / "db.sqlite", group_fsync=True)
    order: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    await s.write(lambda: s.db.after_commit(lambda: order.append("callback")))
    await s.drain()
    assert order == ["fsync", "callback"]
    s.close()


@pytest.fixture
def serving(tmp_path: Path) -> Store:
    """The daemon's store: group fsync, and every write through `write()`."""
    s = Store.open(tmp_path / "db.sqlite", clock=Clock(), group_fsync=True)
    s.db.serve()
    return s


async def test_writes_arriving_during_an_fsync_share_the_next_transaction(
    serving: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What arrives while the WAL is being fsynced cannot be answered before the next fsync anyway:
    # it goes in one transaction when the fsync is done, not one small transaction per loop turn.
    s = serving
    gate = threading.Event()
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (gate.wait(10), real_fsync(fd))[1])
    begins: list[str] = []
    s.db.conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    first = asyncio.ensure_future(accept(s, acceptance(["+48601000000"])))
    while not begins:
        await asyncio.sleep(0)
    later = []
    for i in range(5):  # each in a loop turn of its own, while the first fsync hangs
        later.append(asyncio.ensure_future(accept(s, acceptance([f"+4860100000{i + 1}"]))))
        await asyncio.sleep(0.005)
    assert len(begins) == 1 and not first.done()
    gate.set()
    results = await asyncio.gather(first, *later)
    assert all(r.message_ids for r in results)
    assert len(begins) == 2, begins
    s.db.conn.set_trace_callback(None)
    s.close()


async def test_a_failed_fsync_fails_its_writers_and_every_later_write_and_stops_the_daemon(
    serving: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel reports a write-back error once and may drop the pages: a later fsync that succeeds
    # says nothing about them, while their rows stay visible (a retry would hear "already accepted").
    s = serving
    stops: list[str | None] = []
    s.db.on_replaced = lambda: stops.append(s.db.replaced)
    real_fsync = os.fsync
    failures = [OSError(5, "Input/output error")]

    def fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    reader = sqlite3.connect(s.db.path)  # another process's reader: the WAL outlives our close
    reader.execute("SELECT COUNT(*) FROM messages").fetchone()
    with pytest.raises(StoreReplaced, match="fsync failed"):
        await accept(s, acceptance(["+48601000001"]))  # its client hears 451, never 250
    with pytest.raises(StoreReplaced):
        await accept(s, acceptance(["+48601000002"]))  # nor does anyone after it
    assert stops == [UNSYNCED]  # the daemon is told to stop, once
    s.close()
    # The WAL is the database's own, not a stranger's to throw away: the next start replays it.
    assert await asyncio.to_thread(os.path.exists, f"{s.db.path}-wal")
    reader.close()
    again = Store.open(s.db.path)
    assert again.admin.count_messages() == 1  # the first mail's rows, whatever the restart decides
    again.close()


async def test_a_database_error_at_begin_fails_the_batch_instead_of_leaving_it_waiting(
    serving: Store,
) -> None:
    # A file overwritten in place (same inode: the file check cannot tell) or a closed connection:
    # BEGIN raises something other than "locked". The callers hear it; none waits forever.
    s = serving
    real = s.db._conn

    class Malformed:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("BEGIN"):
                raise sqlite3.DatabaseError("database disk image is malformed")
            return real.execute(sql, *args)

    s.db._conn = Malformed()  # type: ignore[assignment]
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        await asyncio.wait_for(accept(s, acceptance(["+48601000001"])), 5)
    s.db._conn = real
    assert (await accept(s, acceptance(["+48601000002"]))).message_ids  # and the store goes on
    s.close()


async def test_a_piece_raising_a_base_exception_fails_its_batch_and_leaves_no_transaction_open(
    serving: Store,
) -> None:
    s = serving

    class Interrupted(BaseException):
        pass

    def interrupted() -> None:
        raise Interrupted()

    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx["exception"]))
    try:
        with pytest.raises(StoreError, match="interrupted"):
            await asyncio.wait_for(s.db.write(interrupted), 5)
    finally:
        loop.set_exception_handler(None)
    assert [type(e) for e in reported] == [Interrupted]  # still raised, for the loop to report
    assert not s.db.conn.in_transaction
    assert (await accept(s, acceptance(["+48601000002"]))).message_ids
    s.close()
