"""A store whose writes keep failing says so at once, then in a line per kind every 30 s with the count.

Defect: while another process held the write lock, `store.busy` was logged for each write that gave
up on it (105 lines in 30 s), and a full disk's `store.commit_failed` once a second per kind (some
400 lines a minute with the relay's own). The first line still goes out at once; the rest are
counted in `suppressed`, and said when the daemon stops (`flush_all`) or the trouble is over.
The daemon's real store on a real SQLite file, locked by another connection, or made full as
SQLite sees a full disk (`PRAGMA max_page_count` at its current size).
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.store.db import Store, StoreBusy
from smsc.logthrottle import flush_all

GIVE_UPS = 12


def told(found: list[dict[str, Any]]) -> int:
    """The failures the lines stand for: each line one (a summary none) and those it held back."""
    return sum((0 if e.get("summary") else 1) + e.get("suppressed", 0) for e in found)


async def test_writes_giving_up_on_a_held_lock_log_one_line_and_a_count(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    store = Store.open(path, group_fsync=True)
    store.db.serve()
    store.db.interactive_patience = 0.05
    await store.write(lambda: store.db.conn.execute("CREATE TABLE t (v INTEGER)"))
    try:
        with (
            structlog.testing.capture_logs() as logs,
            closing(sqlite3.connect(path, isolation_level=None)) as other,
        ):
            other.execute("BEGIN IMMEDIATE")
            for i in range(GIVE_UPS):
                with pytest.raises(StoreBusy):
                    await store.write(
                        lambda i=i: store.db.conn.execute("INSERT INTO t VALUES (?)", (i,)), interactive=True
                    )
                await asyncio.sleep(0.25)  # each a write of its own, as mail or receipts come
            other.execute("ROLLBACK")
            await store.write(lambda: store.db.conn.execute("INSERT INTO t VALUES (0)"))
            flush_all()  # as the daemon's stop does
    finally:
        store.close()
    busy = [e for e in logs if e["event"] == "store.busy"]
    assert len([e for e in busy if not e.get("summary")]) == 1, busy
    assert told(busy) >= GIVE_UPS, busy


async def test_a_full_store_logs_its_first_failure_then_a_count(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    store = Store.open(path, group_fsync=True)
    store.db.serve()
    await store.write(lambda: store.db.conn.execute("CREATE TABLE t (v BLOB)"))
    pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
    store.db.conn.execute(f"PRAGMA max_page_count = {pages}")
    refused = 0
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(GIVE_UPS):
                try:
                    await store.write(
                        lambda: store.db.conn.execute("INSERT INTO t VALUES (?)", (b"x" * 8192,))
                    )
                except sqlite3.OperationalError:
                    refused += 1
                await asyncio.sleep(0.25)
            flush_all()
    finally:
        store.close()
    assert refused == GIVE_UPS
    commits = [e for e in logs if e["event"] == "store.commit_failed"]
    assert len([e for e in commits if not e.get("summary")]) == 1, commits
    assert told(commits) == max(e["failures"] for e in commits) >= refused
