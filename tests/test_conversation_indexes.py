"""The conversations table keeps only the indexes its reads need: each one is written at every mail.

Every accepted mail upserts its conversation (a new row, or `last_mt_at` moved), which writes every
index of the table that holds `last_mt_at`: one more index page per mail in the WAL, its fsync and
its checkpoint copy. `conversations_match` (phone, number, last_mt_at) was one of them; the reads it
served (the MO's match, `last_on`, `numbers_with`, the reply pool's, `shared_with`) read the same
phone's few rows off the unique (phone, user_email) index. Real SQLite files, fresh and upgraded,
the statements as the repositories run them, an injected clock.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from gateway.conversations.pool import ReplyPool, shared_with
from gateway.conversations.repo import ConversationsRepo
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.schema import MIGRATIONS
from tests.test_fresh_schema import migrated_up_to
from tests.test_store import Clock

KEPT = {"conversations_user_phone", "conversations_age", "conversations_account", "conversations_user"}
PHONES = [f"+4860100{n:04d}" for n in range(40)]
NUMBERS = ("+48100200300", "+48100200301", "+48100200302")
WINDOW = 30 * 86400


def indexes(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversations'")
    return {r[0] for r in rows if not r[0].startswith("sqlite_autoindex")}


def test_a_new_database_writes_no_index_no_read_needs(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    try:
        assert indexes(store.db.conn) == KEPT
    finally:
        store.close()


def test_an_upgraded_database_drops_the_match_index() -> None:
    conn = migrated_up_to(55)
    try:
        assert "conversations_match" in indexes(conn)
        for number, migration in enumerate(MIGRATIONS[55:], start=56):
            for statement in migrate._split_sql(migration):
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (number,))
        assert indexes(conn) == KEPT
    finally:
        conn.close()


def test_the_reads_by_phone_search_the_phones_rows(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        account = store.accounts.add_account("acme").id
        repo = ConversationsRepo(store.db, store.clock)
        for i, phone in enumerate(PHONES):
            for user in range(1 + i % 4):
                repo.record_mt(
                    phone=phone, number=NUMBERS[(i + user) % 3], user_email=f"u{user}@acme.example",
                    account_id=account, domain="sms.example.com", header_message_id=f"<{i}.{user}@a>",
                    subject="s", text="t",
                )  # fmt: skip
                clock.t += 1
        conn = store.db.conn
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            phone = PHONES[3]
            conv = repo.match(phone, NUMBERS[0], clock.t, WINDOW, "PL")
            assert conv is not None
            assert repo.last_on(phone, NUMBERS[0]) is not None
            assert set(repo.numbers_with(phone)) == set(NUMBERS)
            assert repo.find_live(phone, "u0@acme.example", clock.t, WINDOW) is not None
            shared_with(conn, conv, clock.t, WINDOW, "PL")
            pool = (*NUMBERS, "+48100200303")
            ReplyPool(store.db, store.clock).choose_number(
                PHONES[5], "u9@acme.example", pool, clock.t, WINDOW, account, region="PL"
            )
        finally:
            conn.set_trace_callback(None)
        reads = [s for s in seen if re.search(r"\bFROM conversations\b", s)]
        assert len(reads) >= 6, seen
        for sql in reads:
            plan = " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert "SCAN conversations" not in plan, f"{sql}\n  -> {plan}"
            by_phone = r"SEARCH conversations USING (COVERING )?INDEX conversations_user_phone"
            assert re.search(by_phone, plan), f"{sql}\n  -> {plan}"
    finally:
        store.close()
