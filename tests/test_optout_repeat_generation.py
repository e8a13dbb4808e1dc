"""A phone's repeated STOP moves its opt-out's time and leaves every process's cached settings alone.

The time moves so that a premium answer is withdrawn only by a STOP since the vote it answers; the
opt-out table's update trigger bumped the settings generation for it, and each process (the daemon,
every intake worker) dropped its cached users, accounts, networks and opt-out numbers and read them
again, some 55 ms with 100,000 numbers listed, though the numbers it holds had not changed. A number
added or taken off still tells them. Real SQLite files, two stores on one database as two processes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.db import Store
from gateway.store.policy import ADDED, LISTED, MADE_ADMINS
from tests.test_store import Clock, undo_migration_78

PHONE = "+48601123456"


def generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM settings_generation").fetchone()[0])


def test_a_repeated_stop_moves_the_time_and_keeps_the_generation(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "smsgw.db", clock=clock)
    other = Store.open(tmp_path / "smsgw.db", clock=clock)  # another process's view of the database
    try:
        added = store.db.conn.execute("SELECT optouts_added FROM settings_generation").fetchone()
        listed = generation(store.db.conn)
        assert store.policy.add_optout(PHONE, word="STOP", source="mo") == ADDED
        assert generation(store.db.conn) == listed  # a number added: its own value (migration 79)
        assert store.db.conn.execute("SELECT optouts_added FROM settings_generation").fetchone() != added
        assert other.policy.is_opted_out(PHONE)
        first = store.db.conn.execute("SELECT created_at FROM optouts").fetchone()[0]

        clock.t += 3600
        assert store.policy.add_optout(PHONE, word="STOP", source="mo") == LISTED
        assert store.db.conn.execute("SELECT created_at FROM optouts").fetchone()[0] == first + 3600
        assert generation(store.db.conn) == listed  # the numbers held did not change
        assert store.policy.opted_out_since(PHONE, first + 1800)  # the move itself is read
        assert store.policy.add_optout(PHONE, word=None, source="admin") == MADE_ADMINS
        assert generation(store.db.conn) == listed
        assert other.policy.optout_by(PHONE, None) == ["admin"]

        assert store.policy.remove_optout(PHONE)
        assert generation(store.db.conn) != listed  # a number taken off: every process told
        assert not other.policy.is_opted_out(PHONE)
    finally:
        other.close()
        store.close()


def test_the_old_trigger_bumped_it_for_the_time_alone(tmp_path: Path) -> None:
    """The schema before 78, for the figure the change is about: the same repeated STOP bumped it."""
    clock = Clock()
    store = Store.open(tmp_path / "smsgw.db", clock=clock)
    try:
        store.policy.add_optout(PHONE, word="STOP", source="mo")
        undo_migration_78(store.db.conn)
        listed = generation(store.db.conn)
        clock.t += 3600
        assert store.policy.add_optout(PHONE, word="STOP", source="mo") == LISTED
        assert generation(store.db.conn) != listed
    finally:
        store.close()


def test_a_repeated_stop_keeps_this_processs_cached_list(tmp_path: Path) -> None:
    """The store that writes the repeated STOP dropped its own cached settings all the same (its
    write ran inside `changing_settings`) and read the whole list again at the next lookup; a number
    made the admin's or taken off still drops them (one added is read alone:
    tests/test_optout_added_cache.py)."""
    clock = Clock()
    store = Store.open(tmp_path / "smsgw.db", clock=clock)
    statements: list[str] = []
    try:
        assert store.policy.add_optout(PHONE, word="STOP", source="mo") == ADDED
        assert store.policy.is_opted_out(PHONE)  # the list read, and kept
        store.db.conn.set_trace_callback(statements.append)
        clock.t += 3600
        assert store.policy.add_optout(PHONE, word="STOP", source="mo") == LISTED
        assert store.policy.is_opted_out(PHONE) and not store.policy.is_opted_out("+48601000002")
        assert [s for s in statements if s.startswith("SELECT rowid, number FROM optouts")] == []
        assert store.policy.add_optout(PHONE, word=None, source="admin") == MADE_ADMINS
        assert store.policy.is_opted_out(PHONE)
        assert [s for s in statements if s.startswith("SELECT rowid, number FROM optouts")] == [
            "SELECT rowid, number FROM optouts ORDER BY rowid"
        ]
    finally:
        store.db.conn.set_trace_callback(None)
        store.close()
