"""A step back's searches of the MOs it moves go by their indexes, not through every older MO.

The first MO a move's chunks begin at and whether a move carries an MO back over a billed month's end
were each one search over `id < first`: SQLite walked the table from its oldest row to the first
recent one (0.2-0.9 s with a million older MOs, in the write that starts the move, holding the
loop). They are now the least of two indexed searches, the recent MOs' and the segments'. What the
plans say is checked here on a real SQLite file; the figures are in the commit that made it so.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store import stepchunks
from gateway.store.clockstep import ClockStep, Marks
from gateway.store.db import Store
from tests.test_store import Clock


def plans(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    steps: list[str] = []
    for sql in statements:
        steps += [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return steps


def searched(store: Store, ask: object) -> list[str]:
    conn = store.db.conn
    statements: list[str] = []
    conn.set_trace_callback(lambda sql: statements.append(sql) if sql.lstrip().startswith("SELECT") else None)
    try:
        assert callable(ask)
        ask()
    finally:
        conn.set_trace_callback(None)
    assert statements
    return plans(conn, statements)


def walks_old_rows(steps: list[str]) -> list[str]:
    """The steps that go through MOs by id alone, from the oldest: a scan, or a search by rowid only."""
    return [
        s for s in steps if s.startswith("SCAN mo") or s == "SEARCH mo USING INTEGER PRIMARY KEY (rowid<?)"
    ]


def test_the_first_mo_a_move_begins_at_is_searched_by_index(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    try:
        steps = searched(store, lambda: stepchunks.mo_start(store.db.conn, 10**6, 1.7e9))
        assert walks_old_rows(steps) == [], steps
        assert any("mo_received" in s for s in steps) and any("mo_state" in s for s in steps), steps
    finally:
        store.close()


def test_whether_a_move_crosses_a_month_end_is_searched_by_index(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    try:
        step = ClockStep(3 * 86400.0, Marks(10**6, 10**6, 10**6))
        steps = searched(store, lambda: store.mo.moved_over(step, 1.7e9))
        assert walks_old_rows(steps) == [], steps
        assert any("mo_received" in s for s in steps) and any("mo_state" in s for s in steps), steps
    finally:
        store.close()
