"""WAL checkpoints run off the event loop, keep the WAL bounded, and lose nothing in a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store import checkpoint
from gateway.store.db import Store
from tests.conftest import DOMAIN, mail
from tests.test_process import free_port, start_daemon, write_config

LIMIT = 64 * 4096


async def small_wal_store(tmp_path: Path) -> tuple[Store, Path]:
    """The daemon's store with a small WAL limit and a table for blobs, and its WAL's path."""
    path = tmp_path / "db.sqlite"
    store = Store.open(path, group_fsync=True)
    store.db.serve()
    store.db.limit_wal(LIMIT)
    await store.write(lambda: store.db.conn.execute("CREATE TABLE t (v BLOB)"))
    # From an empty WAL: creating the schema writes about 1 MB to it, past the hard bound (HARD_FACTOR ×
    # the limit) of these tests, so the checkpoint that started would otherwise run within a test.
    while (task := store.db._checkpoint_task) is not None and not task.done():
        await asyncio.sleep(0.01)
    return store, Path(f"{path}-wal")


async def write_round(store: Store) -> None:
    """20 writes of 8 KiB, one group commit's worth."""
    await asyncio.gather(
        *(
            store.write(lambda: store.db.conn.execute("INSERT INTO t VALUES (randomblob(8192))"))
            for _ in range(20)
        )
    )


async def test_wal_stays_bounded_and_checkpoints_leave_the_loop_thread(tmp_path: Path) -> None:
    store, wal = await small_wal_store(tmp_path)
    assert store.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    limit = LIMIT
    largest = 0
    checkpoint_threads: set[str] = set()
    run = store.db._checkpointer.run  # type: ignore[union-attr]

    def spy(mode: str) -> tuple[int, int, int]:
        checkpoint_threads.add(threading.current_thread().name)
        return run(mode)

    store.db._checkpointer.run = spy  # type: ignore[union-attr,method-assign]
    for _round in range(400):  # about 2 MB of WAL without checkpoints after 40 rounds
        await write_round(store)
        largest = max(largest, os.stat(wal).st_size)
    await store.drain()
    assert checkpoint_threads and all(name.startswith("wal-checkpoint") for name in checkpoint_threads)
    # Without checkpoints the WAL would hold all 64 MB written; it stays within the hard bound (plus
    # what one batch adds while a checkpoint runs).
    assert largest < 6 * limit
    assert store.db.conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 8000
    store.close()


async def test_the_wal_bound_holds_while_a_passive_checkpoint_is_slow(tmp_path: Path) -> None:
    # A passive checkpoint that takes long (slow disk, busy machine) must not let the WAL grow past
    # the hard bound meanwhile: writes wait, and a TRUNCATE runs right after the passive one.
    store, wal = await small_wal_store(tmp_path)
    limit = LIMIT
    release = threading.Event()
    modes: list[str] = []
    run = store.db._checkpointer.run  # type: ignore[union-attr]

    def slow(mode: str) -> tuple[int, int, int]:
        modes.append(mode)
        if mode == "PASSIVE":
            release.wait(20)
        return run(mode)

    store.db._checkpointer.run = slow  # type: ignore[union-attr,method-assign]
    largest = 0

    async def writer() -> None:
        nonlocal largest
        for _round in range(60):  # about 10 MB of WAL if nothing held it back
            await write_round(store)
            largest = max(largest, os.stat(wal).st_size)

    task = asyncio.ensure_future(writer())
    for _ in range(500):
        if store.db._writes_held or task.done():
            break
        await asyncio.sleep(0.02)
    assert store.db._writes_held and modes == ["PASSIVE"]
    held = os.stat(wal).st_size
    await asyncio.sleep(0.2)
    assert os.stat(wal).st_size == held  # nothing written while the bound is passed
    release.set()
    await task
    assert modes[:2] == ["PASSIVE", "TRUNCATE"]
    assert largest < 5 * limit  # the hard bound (HARD_FACTOR × limit) plus the one batch that crossed it
    assert store.db.conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1200
    store.close()


async def test_mail_survives_kill_9_while_checkpoints_run(tmp_path: Path) -> None:
    # Enough mail to pass the default WAL limit a few times; all of it is there after kill -9.
    smsc_port, smtp_port = free_port(), free_port()  # no SMSC: everything stays queued
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    mails = 300

    def send_all() -> None:
        import smtplib

        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            for i in range(mails):
                rcpt = f"60112{i:04d}@{DOMAIN}"
                client.send_message(mail(rcpt, f"Crash test {i} " + "x" * 120), to_addrs=[rcpt])

    try:
        await asyncio.to_thread(send_all)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    db = tmp_path / "state" / "smsgw.db"
    checkpointed = db.stat().st_size  # before anyone opens it (which would replay the WAL)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == mails
    # Checkpoints did run: the database file itself holds rows (with none it would be the schema's
    # few pages, everything else in the WAL).
    assert checkpointed > 200_000


def test_a_reader_that_outlasts_one_truncate_is_not_waited_for_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `smsgw backup` of a large database reads one snapshot for seconds: each TRUNCATE (with the
    # loop's writes held) waited BUSY_MS for it again, stalling intake 2 s at a time until it ended.
    monkeypatch.setattr(checkpoint, "BUSY_MS", 300)
    path = tmp_path / "db.sqlite"
    Store.open(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as writer:
        writer.execute("CREATE TABLE t (v BLOB)")
        writer.execute("INSERT INTO t VALUES (randomblob(100000))")
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM t").fetchone()  # a snapshot, as a backup holds one
        writer.execute("INSERT INTO t VALUES (randomblob(100000))")  # a frame the snapshot predates
        cp = checkpoint.Checkpointer(path)
        try:
            run = lambda: cp.executor.submit(cp.run, "TRUNCATE").result()  # noqa: E731
            timeout = lambda: cp.executor.submit(  # noqa: E731
                lambda: cp._connection().execute("PRAGMA busy_timeout").fetchone()[0]
            ).result()
            assert run()[0] == 1 and timeout() == 300  # waited the full bound once
            assert run()[0] == 1 and timeout() == checkpoint.PINNED_BUSY_MS  # then only briefly
            reader.close()
            assert run()[0] == 0  # the reader gone, the WAL is cut back
            run()
            assert timeout() == 300  # and the next TRUNCATE waits the full bound again
        finally:
            reader.close()
            cp.close()


async def test_while_a_reader_pins_the_wal_commits_are_not_held_for_a_truncate_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a backup's snapshot open, the WAL stays past the hard bound: every commit started a
    # TRUNCATE with writes held (50 ms each, intake 16 times slower for the whole backup). Now the
    # PASSIVE checkpoints, holding nothing, find the reader in the way and no TRUNCATE is tried
    # under the reader's bound (tests/test_checkpoint_reader.py).
    monkeypatch.setattr(checkpoint, "BUSY_MS", 200)
    store, wal = await small_wal_store(tmp_path)
    modes: list[str] = []
    run = store.db._checkpointer.run  # type: ignore[union-attr]

    def spy(mode: str) -> tuple[int, int, int]:
        modes.append(mode)
        return run(mode)

    store.db._checkpointer.run = spy  # type: ignore[union-attr,method-assign]
    reader = sqlite3.connect(store.db.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM t").fetchone()
        for _round in range(40):  # about 6 MB past the snapshot: far over the hard bound
            await write_round(store)
        await store.drain()
        assert os.stat(wal).st_size > 4 * LIMIT  # pinned, as WAL mode must be
        assert "TRUNCATE" not in modes, modes  # not one per commit, nor one now and then
        assert "PASSIVE" in modes
    finally:
        reader.close()
    for _round in range(10):  # the reader gone: the WAL is cut back
        await write_round(store)
    await store.drain()
    store.close()
