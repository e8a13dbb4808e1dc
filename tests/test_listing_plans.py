"""Admin listings read through indexes, whatever the number of rows kept.

Ordered by age alone, SQLite walked every conversation to find a user's or an account's few: with
684,000 kept (a year of a large installation), a company admin's /conversations page made one such
walk per user of the account (about 1 s each, on the daemon's loop: 98 s without a mail answered
or an SMS sent), and `smsgw conversation list --user` took a second; `--number` and `outbox list
--state` walked or sorted every row too. The plans are checked here on the schema the code creates.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store


def plan_of(conn: sqlite3.Connection, sql: str) -> str:
    return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))


def last_select(seen: list[str]) -> str:
    return next(s for s in reversed(seen) if s.startswith("SELECT"))


def conversations_of_acme(store: Store) -> int:
    """300 conversations on our one number, of seven users of account acme, one a second; its id."""
    acme = store.accounts.add_account("acme").id
    store.db.conn.executemany(
        "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
        " last_mt_at) VALUES (?, '+48100200300', ?, ?, 'sms.example.com', 'x', ?, ?)",
        [(f"+486011{i:05d}", f"u{i % 7}@acme.example", acme, i, i) for i in range(300)],
    )
    return acme


def test_an_accounts_and_a_users_conversations_are_read_by_index(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    try:
        acme = conversations_of_acme(store)
        conn = store.db.conn
        conn.execute("ANALYZE")  # as a year of data would look to the planner
        repo = ConversationsRepo(store.db, store.clock)
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        by_account = repo.list_conversations(user=None, numbers=None, limit=100, account_id=acme)
        account_plan = plan_of(conn, last_select(seen))
        by_user = repo.list_conversations(user="U3@acme.example", numbers=None, limit=50)
        user_plan = plan_of(conn, last_select(seen))
        conn.set_trace_callback(None)
    finally:
        store.close()
    assert "USING INDEX conversations_account" in account_plan and "TEMP B-TREE" not in account_plan, (
        account_plan
    )
    assert "USING INDEX conversations_user" in user_plan and "TEMP B-TREE" not in user_plan, user_plan
    assert [c.last_mt_at for c in by_account] == [float(i) for i in range(299, 199, -1)]  # newest first
    assert {c.user_email for c in by_user} == {"u3@acme.example"} and len(by_user) == 43


def test_lists_by_number_look_at_one_end_through_an_index(tmp_path: Path) -> None:
    # `phone IN (…) OR number IN (…)` has no index to serve it: `smsgw conversation list --number`
    # walked all 684,000 conversations (1.3 s) to find a phone's two, and `mo list --number` every MO.
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conversations_of_acme(store)
        conn = store.db.conn
        for i in range(300):
            store.mo.record_mo("main", f"+486011{i % 50:05d}", "48100200300", f"answer {i}", 0, None)
        conn.execute("ANALYZE")
        repo = ConversationsRepo(store.db, store.clock)
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        phone = ("+48601100007", "48601100007")
        by_phone = repo.list_conversations(user=None, numbers=phone, limit=50)
        phone_plan = plan_of(conn, last_select(seen))
        by_ours = repo.list_conversations(user=None, numbers=("+48100200300",), limit=50, ours=True)
        mo_by_phone = repo.list_mo(since=None, numbers=phone, limit=50)
        mo_plan = plan_of(conn, last_select(seen))
        mo_by_ours = repo.list_mo(since=None, numbers=("48100200300",), limit=50, ours=True)
        conn.set_trace_callback(None)
    finally:
        store.close()
    assert "SEARCH conversations USING INDEX" in phone_plan, phone_plan
    assert "SEARCH m USING INDEX mo_copies" in mo_plan, mo_plan
    assert [c.phone for c in by_phone] == ["+48601100007"]
    assert [c.last_mt_at for c in by_ours] == [float(i) for i in range(299, 249, -1)]
    assert [m["text"] for m in mo_by_phone] == [f"answer {i}" for i in (257, 207, 157, 107, 57, 7)]
    assert len(mo_by_ours) == 50 and mo_by_ours[0]["text"] == "answer 299"


def test_the_outbox_by_state_is_read_newest_first_along_its_index(tmp_path: Path) -> None:
    # In id order SQLite sorted every mail of the state first: `smsgw outbox list --state sent`
    # took 0.7 s with a year's 300,000 sent mails kept.
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        conn.executemany(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
            " created_at) VALUES ('reply', '', 'u@acme.example', x'00', ?, 1, ?, ?)",
            [("failed" if i % 10 == 0 else "sent", i, i) for i in range(500)],
        )
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        sent = store.admin.list_outbox("sent", limit=5)
        plan = plan_of(conn, last_select(seen))
        conn.set_trace_callback(None)
    finally:
        store.close()
    assert "USING INDEX outbox_age" in plan and "TEMP B-TREE" not in plan, plan
    assert [m["created_at"] for m in sent] == [499.0, 498.0, 497.0, 496.0, 495.0]
