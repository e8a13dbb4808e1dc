"""A phone's first STOP adds its number to every process's cached opt-out list without a reload.

Each number added to the shared list bumped the settings generation: every process (the daemon,
each intake worker) dropped all its cached settings and read the whole list again, some 55 ms with
100,000 numbers listed, at each first-time STOP of a burst. A number added now gives the row's
`optouts_added` a new value (migration 79), and each process reads only the rows past the last one
it holds; a STOP still stops the very next mail to the number in every process, and an addition
rolled back after a process read it leaves no trace. Real SQLite files, two stores on one database
as two processes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store.db import Store
from gateway.store.policy import ADDED
from gateway.suspensions import SuspensionWatch
from tests.test_store import Clock

PHONE = "+48601123456"
LISTED = [f"+48602{i:06d}" for i in range(50)]


def whole_reads(statements: list[str]) -> list[str]:
    """Statements that read the shared list whole (not a lookup, not the rows past a rowid)."""
    return [s for s in statements if "FROM optouts" in s and "WHERE" not in s and "LIMIT" not in s]


def stores(tmp_path: Path) -> tuple[Store, Store]:
    clock = Clock()
    one = Store.open(tmp_path / "smsgw.db", clock=clock)
    for number in LISTED:
        one.policy.add_optout(number, word="STOP", source="mo")
    return one, Store.open(tmp_path / "smsgw.db", clock=clock)  # another process's view of the database


def test_a_first_stop_is_read_alone_by_every_process(tmp_path: Path) -> None:
    one, other = stores(tmp_path)
    statements: list[str] = []
    loads: list[str] = []
    try:
        for store in (one, other):
            assert store.policy.is_opted_out(LISTED[7]) and not store.policy.is_opted_out(PHONE)
            store.db.settings.get("probe", None, lambda: loads.append("probe"))
            store.db.conn.set_trace_callback(statements.append)
        (generation,) = one.db.conn.execute("SELECT value FROM settings_generation").fetchone()
        assert one.policy.add_optout(PHONE, word="STOP", source="mo") == ADDED
        assert one.db.conn.execute("SELECT value FROM settings_generation").fetchone() == (generation,)
        assert one.policy.is_opted_out(PHONE)  # the very next mail from this process
        assert other.policy.is_opted_out(PHONE)  # and from the other one
        assert other.policy.is_opted_out(LISTED[7]) and not other.policy.is_opted_out("+48601000002")
        assert whole_reads(statements) == []
        for store in (one, other):  # the rest of the cached settings is kept too
            store.db.settings.get("probe", None, lambda: loads.append("probe"))
        assert loads == ["probe", "probe"]

        # A number taken off still drops the list in every process.
        assert other.policy.remove_optout(PHONE)
        assert not one.policy.is_opted_out(PHONE) and not other.policy.is_opted_out(PHONE)
        assert len(whole_reads(statements)) == 2
    finally:
        for store in (one, other):
            store.db.conn.set_trace_callback(None)
            store.close()


def test_the_dispatchers_watch_sees_a_number_added(tmp_path: Path) -> None:
    """Parts it holds claimed to the number must be looked at again (`gateway.suspensions`)."""
    one, other = stores(tmp_path)
    try:
        watch = SuspensionWatch(one)
        assert watch._changed()
        watch._next_look = 0.0
        assert not watch._changed()
        other.policy.add_optout(PHONE, word="STOP", source="mo")
        watch._next_look = 0.0
        assert watch._changed()
    finally:
        one.close()
        other.close()


@pytest.mark.parametrize("same_last", [False, True])
def test_an_addition_read_then_rolled_back_leaves_no_trace(tmp_path: Path, same_last: bool) -> None:
    """Read inside the transaction that added them, then rolled back: their rowids go to the next
    writer's numbers. `same_last`: that writer adds the last of them again, under its old rowid."""
    one, other = stores(tmp_path)
    try:
        assert not one.policy.is_opted_out(PHONE)
        with pytest.raises(RuntimeError), one.db.transaction():
            one.policy.add_optout("+48601000001", word="STOP", source="mo")
            one.policy.add_optout(PHONE, word="STOP", source="mo")
            assert one.policy.is_opted_out(PHONE) and one.policy.is_opted_out("+48601000001")
            raise RuntimeError("rolled back")
        other.policy.add_optout("+48601000009", word="STOP", source="mo")
        if same_last:
            other.policy.add_optout(PHONE, word="STOP", source="mo")
        assert one.policy.is_opted_out("+48601000009")
        assert not one.policy.is_opted_out("+48601000001")
        assert one.policy.is_opted_out(PHONE) == same_last
    finally:
        one.close()
        other.close()


def test_rows_given_new_rowids_are_read_again(tmp_path: Path) -> None:
    """The list's key is the number, so its rowids are SQLite's to give: a VACUUM may give them anew
    (no trigger tells). A number added after it can take the rowid of the last number a process holds."""
    one, other = stores(tmp_path)
    try:
        other.policy.remove_optout(LISTED[10])
        assert one.policy.is_opted_out(LISTED[-1])  # the list held, with its gap
        with sqlite3.connect(tmp_path / "smsgw.db") as admin:  # as a VACUUM that closes the gap may
            admin.execute("UPDATE optouts SET rowid = rowid - 1 WHERE rowid > 11")
        other.policy.add_optout(PHONE, word="STOP", source="mo")
        assert one.policy.is_opted_out(PHONE)
        assert one.policy.is_opted_out(LISTED[-1]) and not one.policy.is_opted_out(LISTED[10])
    finally:
        one.close()
        other.close()


def test_a_list_read_in_a_rolled_back_transaction_is_read_again_after_the_next_one(tmp_path: Path) -> None:
    """The whole list read inside a transaction then rolled back, and the next addition by another
    process first seen inside another transaction: the rowids it held past the committed rows are the
    other writer's now, so only the whole list read again can be trusted."""
    one, other = stores(tmp_path)
    try:
        with pytest.raises(RuntimeError), one.db.transaction():
            one.policy.add_optout("+48601000001", word="STOP", source="mo")  # rowid 51
            one.policy.add_optout(PHONE, word="STOP", source="mo")  # rowid 52
            assert one.policy.is_opted_out(PHONE)  # the first read of the list: whole, in here
            raise RuntimeError("rolled back")
        other.policy.add_optout("+48601000009", word="STOP", source="mo")  # rowid 51
        other.policy.add_optout(PHONE, word="STOP", source="mo")  # rowid 52, as held
        with one.db.transaction():
            assert one.policy.is_opted_out("+48601000009")
            assert not one.policy.is_opted_out("+48601000001")
        assert one.policy.is_opted_out("+48601000009")
        assert not one.policy.is_opted_out("+48601000001")
        assert one.policy.is_opted_out(PHONE) and one.policy.is_opted_out(LISTED[-1])
    finally:
        one.close()
        other.close()
