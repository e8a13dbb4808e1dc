"""The hourly limit's count of a sender's answers mailed reads the sender's MOs of the hour, whatever
its history: through `mo_copies` (sender, our number, time) it read every MO the phone ever sent before
each of its answers, some 27,000 SQLite instructions for a phone with 3,000 older MOs. The count states
`id > 0`, the condition of the index of each sender's MOs by time (migration 76). Counted here in
instructions (no clock) and by the plan, on a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path

from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Db
from tests.test_store import vm_steps

NOW = 1_800_000_000.0
PHONE = "+48601000001"
OURS = ("+48500000001", "+48500000002", "+48500000003", "+48500000004", "+48500000005")
HOURLY_PLAN = "SEARCH mo USING INDEX mo_phone_times (source=? AND received_at>?)"


def fill(conn: sqlite3.Connection) -> None:
    """A month of the phone's MOs to five of our numbers (3,000), its answers of the last hour (three
    mailed, one kept, one mailed before the hour), a sender ID writing in two spellings, other phones."""

    def mo(source: str, at: float, state: str = "mailed", destination: str = OURS[0]) -> None:
        conn.execute(
            "INSERT INTO mo (link, source, destination, text, state, received_at)"
            " VALUES ('l', ?, ?, 'x', ?, ?)",
            (source, destination, state, at),
        )

    conn.execute("BEGIN")
    for i in range(3000):
        mo(PHONE, NOW - 3700 - 30 * 86400 * i / 3000, destination=OURS[i % 5])
        mo(f"+4860{i % 500:07d}", NOW - 30 * 86400 * i / 3000)
    for at in (NOW - 3000, NOW - 2000, NOW - 60):
        mo(PHONE, at)
    mo(PHONE, NOW - 30, "throttled")
    for i in range(2000):
        mo("PROMO" if i % 2 else "Promo", NOW - 3700 - 86400 * i / 2000)
    mo("PROMO", NOW - 100)
    mo("Promo", NOW - 50)
    mo("pRoMo", NOW - 40, "throttled")
    conn.execute("COMMIT")


def plan(conn: sqlite3.Connection, work: Callable[[], object]) -> list[str]:
    """The plan of the count on `mo` that `work` ran on `conn` (its bound values written in)."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        work()
    finally:
        conn.set_trace_callback(None)
    (count,) = [s for s in statements if "FROM mo WHERE" in s]
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {count}")]


def test_the_hourly_count_reads_the_senders_mos_of_the_hour_not_its_history(tmp_path: Path) -> None:
    db = Db.open(tmp_path / "smsgw.db")
    try:
        fill(db.conn)
        repo = ConversationsRepo(db, lambda: NOW)
        assert repo.mailed_from(PHONE, NOW - 3600) == (3, 1, 0)
        assert repo.mailed_from("promo", NOW - 3600, any_case=True) == (2, 1, 0)

        phone = plan(db.conn, partial(repo.mailed_from, PHONE, NOW - 3600))
        assert HOURLY_PLAN in phone, phone
        # A sender ID's spellings: the range between its capitals and small letters of the same index.
        sender_id = plan(db.conn, partial(repo.mailed_from, "PROMO", NOW - 3600, any_case=True))
        assert any(
            p.startswith("SEARCH mo USING INDEX mo_phone_times (source>? AND source<?)") for p in sender_id
        )

        instructions, _ = vm_steps(db.conn, lambda: repo.mailed_from(PHONE, NOW - 3600), every=1)
        assert instructions < 2000, instructions  # through mo_copies: some 27,000
    finally:
        db.close()


def test_the_late_rests_count_reads_the_phones_mos_since_its_first_text(tmp_path: Path) -> None:
    # How many late rests of one SMS were mailed (`rests_mailed`): the same history, read from the first
    # text's time on, not every MO the phone sent (through `mo_copies`: some 18,000 instructions).
    db = Db.open(tmp_path / "smsgw.db")
    try:
        fill(db.conn)
        (first,) = db.conn.execute(
            "SELECT MIN(id) FROM mo WHERE source = ? AND received_at >= ?", (PHONE, NOW - 3600)
        )
        with db.conn:
            db.conn.execute(
                "UPDATE mo SET follows = ? WHERE source = ? AND received_at > ?",
                (first[0], PHONE, NOW - 2500),
            )
        repo = ConversationsRepo(db, lambda: NOW)
        assert repo.rests_mailed(PHONE, first[0], NOW - 3000) == 2  # at NOW - 2000 and - 60; one kept

        assert HOURLY_PLAN in plan(db.conn, partial(repo.rests_mailed, PHONE, first[0], NOW - 3000))
        instructions, _ = vm_steps(db.conn, lambda: repo.rests_mailed(PHONE, first[0], NOW - 3000), every=1)
        assert instructions < 2000, instructions
    finally:
        db.close()
