"""A clock step's record that cannot be read (edited by hand) is said once, not at every start or poll.

A move's plan that cannot be read was left in the store: every start said `clock.move_unreadable`
again, forever. It is deleted once said. The steps forward kept are read at every `smsgw status`,
/healthz and dashboard poll: unreadable, each poll logged a warning; now once a process.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from structlog.testing import capture_logs

from gateway.store import forwardsteps
from gateway.store.db import Store
from tests.test_clock_step import Monotonic, housekeeping
from tests.test_clock_step_back_chunks import PLAN_KEY, a_store
from tests.test_store import Clock


def said(logs: list[dict[str, object]], event: str) -> int:
    return sum(1 for e in logs if e["event"] == event)


async def test_a_move_plan_that_cannot_be_read_is_said_once_and_deleted(tmp_path: Path) -> None:
    path = a_store(tmp_path, "db.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO billing_state (key, value) VALUES (?, ?)", (PLAN_KEY, '{"seconds": "x"}'))
    with capture_logs() as logs:
        for _start in range(2):
            store = Store.open(path, clock=Clock())
            store.db.serve()
            hk = housekeeping(store, Monotonic())
            assert await hk.check_clock() == 0.0
            store.close()
    assert said(logs, "clock.move_unreadable") == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM billing_state WHERE key = ?", (PLAN_KEY,)).fetchone() == (
            0,
        )


def test_steps_forward_that_cannot_be_read_are_said_once_a_process(tmp_path: Path) -> None:
    path = a_store(tmp_path, "db.sqlite")
    key = forwardsteps.FORWARD_KEY
    for n in range(2):  # no time in either; another value is said again, once
        value = json.dumps([[f"{tmp_path} {n}", 1]])
        with sqlite3.connect(path) as conn, capture_logs() as logs:
            conn.execute("INSERT OR REPLACE INTO billing_state (key, value) VALUES (?, ?)", (key, value))
            for _poll in range(3):
                assert forwardsteps.kept_steps(conn) == []
        assert said(logs, "clock.forward_steps_unreadable") == 1
