"""`recorded_before`: whether a machine mail was recorded before (R-1.8: a bounce delivered again is
recorded again but forwarded once), asked of machine mail rows alone, so that the dedup key's index
may hold only theirs (a partial index, `WHERE automatic IS NOT NULL`) instead of every mail's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.db import Store
from gateway.store.records import Acceptance


def record(store: Store, key: str, automatic: str | None) -> None:
    mail = Acceptance(
        mail_from="mailer-daemon@example.net",
        client_ip="192.0.2.1",
        account_id=None,
        user_id=None,
        header_message_id="m1@example.net",
        dedup_key=key,
        subject="Undelivered Mail Returned to Sender",
        text="bounced",
        messages=[],
        validity_seconds=0,
        automatic=automatic,
    )
    with store.db.transaction():
        store.queue.insert_email(mail)


def statements(conn: sqlite3.Connection, call: object) -> list[str]:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        assert callable(call)
        call()
    finally:
        conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def test_a_machine_mail_recorded_before_is_found_and_another_key_is_not(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    record(store, "k1", "bounce")
    assert store.queue.recorded_before("k1")
    assert not store.queue.recorded_before("k2")
    assert not store.queue.recorded_before(None)


def test_only_machine_mail_rows_answer(tmp_path: Path) -> None:
    # A person's mail keeps its key too (its messages' dedup goes by `reached_before`): it is no
    # recorded machine mail, and the partial index would not hold it.
    store = Store.open(tmp_path / "db.sqlite")
    record(store, "k1", None)
    assert not store.queue.recorded_before("k1")


def test_its_statement_takes_a_dedup_index_of_machine_mail_alone(tmp_path: Path) -> None:
    # Migration 70 made the index partial: a person's mail's key is not in it.
    store = Store.open(tmp_path / "db.sqlite")
    conn = store.db.conn
    (made,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'emails_dedup'").fetchone()
    assert made.endswith("WHERE automatic IS NOT NULL"), made
    record(store, "k1", "bounce")
    assert store.queue.recorded_before("k1")
    (sql,) = statements(conn, lambda: store.queue.recorded_before("k1"))
    plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))  # traced bound
    assert "USING INDEX emails_dedup" in plan and "SCAN" not in plan, plan
