"""The claim's reads of due parts (`gateway.store.claimreads`), on a real SQLite file: a few due SMS
are claimed from the due index without temporary b-trees, and exactly as the per-account statement
claims them."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.smtp.accept import accept
from gateway.store.adminstops import cancel_asked
from gateway.store.db import ClaimedPart, Store
from gateway.store.partnotes import MAYBE_SENT_NOTES
from tests.test_store import Clock, acceptance

T = TypeVar("T")
_TEMPORARY = ("OpenEphemeral", "SorterOpen")


def temporary_tables(conn: sqlite3.Connection, work: Callable[[], T]) -> tuple[int, T]:
    """How many temporary b-trees (and sorters) the statements `work` runs open, read off their
    programs (EXPLAIN), and what `work` returned."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        result = work()
    finally:
        conn.set_trace_callback(None)
    opened = 0
    for sql in statements:
        if sql.split(" ", 1)[0] in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"):
            continue
        # The trace gives the statement with its values written in: its program is the same.
        opened += sum(1 for row in conn.execute(f"EXPLAIN {sql}") if row[1] in _TEMPORARY)
    return opened, result


async def test_a_claim_of_a_few_due_sms_builds_no_temporary_table(tmp_path: Path) -> None:
    # Eight SMS due, as at any moment of a steady flow: the claim read them by a recursive statement
    # per state (its queue, an IN list, a sort), counted the turns by a GROUP BY and took them by an
    # UPDATE … RETURNING: twelve temporary b-trees, some 0.8 M instructions a claim, a fifth of the
    # daemon's work a mail at one claim per four mails. Now only the update's list of ids is one.
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    account = store.accounts.add_account("acme").id
    base = acceptance([f"+4860112{i:04d}" for i in range(8)])
    await accept(store, dataclasses.replace(base, account_id=account))
    opened, claimed = temporary_tables(store.db.conn, lambda: store.queue.claim_due(300))
    assert [p.seq for p in claimed] == [1] * 8 and all(p.attempts == 1 for p in claimed)
    assert store.db.conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'active'").fetchone()[0] == 8
    assert opened <= 1, opened
    store.close()


async def test_few_due_parts_are_claimed_as_the_per_account_statement_claims_them(tmp_path: Path) -> None:
    # The due index's few parts and the per-account statement must give the same claim: the same
    # parts, in the same turns, with the same attempts and notes, whatever the accounts, states, due
    # times and claims in flight.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    accounts = [None, *(store.accounts.add_account(f"company{k}").id for k in range(4))]
    rng = random.Random(15)
    for k in range(70):
        base = acceptance([f"+48601{k:06d}"], parts=rng.choice((1, 1, 2)))
        await accept(store, dataclasses.replace(base, account_id=rng.choice(accounts)))
    conn = store.db.conn
    notes = (None, None, "ESME_RTHROTTLED (0x58)", *MAYBE_SENT_NOTES)
    queue = store.queue
    for trial in range(25):
        conn.execute("BEGIN IMMEDIATE")
        for (pid,) in conn.execute("SELECT id FROM parts").fetchall():
            state = rng.choice(("queued", "queued", "deferred", "deferred", "active", "hold", "submitted"))
            due = clock.t + rng.choice((-300.0, -60.0, -60.0, -1.0, 0.0, 30.0))
            conn.execute(
                "UPDATE parts SET state = ?, next_attempt_at = ?, error = ?, attempts = ? WHERE id = ?",
                (state, due, rng.choice(notes), rng.randrange(3), pid),
            )
        due_now = conn.execute(
            "SELECT state, COUNT(*) FROM parts WHERE state IN ('queued', 'deferred') AND next_attempt_at <= ?"
            " GROUP BY state",
            (clock.t,),
        ).fetchall()
        assert all(count <= 64 for _state, count in due_now)
        limit = rng.choice((1, 2, 5, 12, 40, 300))
        due_accounts = rng.choice((1, 2, 5))
        claims: list[list[ClaimedPart]] = []
        for many in (frozenset({"queued", "deferred"}), frozenset()):
            conn.execute("SAVEPOINT trial")
            queue._due_accounts, queue._many_due = due_accounts, many
            claims.append(queue.claim_due(limit))
            conn.execute("ROLLBACK TO trial")
            conn.execute("RELEASE trial")
        conn.execute("ROLLBACK")
        assert queue._many_due == frozenset(), trial  # the few were read from the due index
        assert claims[0] == claims[1], (trial, limit, due_accounts)
        assert claims[0] or not due_now, trial
    store.close()


async def test_the_claims_look_for_cancels_reads_the_parts_it_claimed_only(tmp_path: Path) -> None:
    # With 300 SMS in flight (windows claimed ahead), the look for an admin's cancel among the eight
    # just claimed walked the state index over all 300: its cost grew with the window, at every claim.
    def steps(in_flight: int, name: str) -> int:
        store = Store.open(tmp_path / name, clock=Clock())
        conn = store.db.conn
        conn.execute("INSERT INTO emails (mail_from, text, received_at) VALUES ('a@b', 't', 0)")
        for pid in range(1, in_flight + 9):
            conn.execute(
                "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
                " created_at, expires_at) VALUES (?, 1, '+48601000000', 's', 't', 0, 1, 'queued', 0, 9e9)",
                (pid,),
            )
            conn.execute(
                "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination,"
                " source, data_coding, payload, udh, text) VALUES (?, ?, 1, 'active', 0, 9e9,"
                " '+48601000000', 's', 0, x'41', x'', 't')",
                (pid, pid),
            )
        counted = [0]

        def tick() -> int:
            counted[0] += 1
            return 0

        conn.set_progress_handler(tick, 1)
        found = cancel_asked(conn, list(range(in_flight + 1, in_flight + 9)))
        conn.set_progress_handler(None, 0)
        store.close()
        assert found == set()
        return counted[0]

    few, many = steps(8, "few.sqlite"), steps(300, "many.sqlite")
    assert many < few + 20, (few, many)
