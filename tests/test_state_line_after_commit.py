"""`message.state` says a message's final state once it is committed, not before: on a full disk the
write of a delivery report failed at its COMMIT and was tried again, and each try logged "delivered"
for an SMS the database kept `submitted` (seven lines for one, 944 in a minute), which someone
reading the log, or a check counting its lines, took for a delivery recorded."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_disk_full_wal import fill, small_tmpfs
from tests.test_store import Clock, acceptance


def _states(logs: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["message"], e["state"]) for e in logs if e["event"] == "message.state"]


async def test_a_report_whose_commit_the_full_disk_refuses_logs_no_state_and_the_retry_logs_it_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * 1024 * 1024):
        store = Store.open(state / "smsgw.db", clock=Clock())
        await accept(store, acceptance(["+48601123456"]))  # one part: settled in one statement
        await accept(store, acceptance(["+48601123457"], parts=2))  # settled from its parts
        parts = store.queue.claim_due(10)
        for i, part in enumerate(parts):
            store.queue.mark_submitted(part.id, "main", f"id{i}")
        single, long = (row[0] for row in store.db.conn.execute("SELECT id FROM messages ORDER BY recipient"))
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next commit needs new room
        fill(state / "filler", 0)
        with structlog.testing.capture_logs() as refused:
            for i in range(len(parts)):
                with pytest.raises(sqlite3.OperationalError, match="full"):
                    store.queue.record_report("main", f"id{i}", "delivered", None, "raw")
        states = dict(store.db.conn.execute("SELECT id, state FROM messages"))
        assert states == {single: "submitted", long: "submitted"}
        assert _states(refused) == []  # nothing said of states never saved
        os.unlink(state / "filler")
        with structlog.testing.capture_logs() as saved:
            for i in range(len(parts)):
                store.queue.record_report("main", f"id{i}", "delivered", None, "raw")
        store.close()
    assert sorted(_states(saved)) == sorted([(single, "delivered"), (long, "delivered")])
