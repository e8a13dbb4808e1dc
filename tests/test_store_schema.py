"""Opening a database file: one that is damaged, from a newer smsgw or locked for now is refused (and told
apart from what a restart fixes), an older one is migrated without keeping what its removed users left.
Here, not in test_store.py, so that module stays the store's everyday promises and its undo helpers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.conversations.repo import ConversationsRepo
from gateway.store import db as db_module
from gateway.store.db import Store, StoreError, StoreUnusable
from gateway.store.schema import SCHEMA_VERSION
from tests.test_store import undo_migration_17


def test_damaged_database_is_refused_with_the_file_named(tmp_path: Path) -> None:
    # F9: never a silent fresh database that forgets queued SMS.
    path = tmp_path / "smsgw.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(path)):
        Store.open(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    # F9: a database from a newer smsgw is not downgraded by guesswork.
    s = Store.open(tmp_path / "db.sqlite")
    s.db.conn.execute("UPDATE schema_version SET version = 999")
    s.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(tmp_path / "db.sqlite")


def test_a_user_added_after_a_removal_does_not_inherit_its_counters(tmp_path: Path) -> None:
    # Users have no AUTOINCREMENT: the next user gets the removed one's id, and with it its
    # `user:<id>` usage (spent limit) and limit notices, unless the removal takes them along.
    s = Store.open(tmp_path / "db.sqlite")
    s.accounts.add_account("acme")
    bob = s.accounts.add_user("bob@acme.example", "acme").id
    s.accounts.add_usage([f"user:{bob}"], ["2026-03"], 40)  # his mail itself already purged
    assert s.policy.first_limit_notice(f"user:{bob}", "2026-03")
    s.accounts.remove_user("bob@acme.example")
    carl = s.accounts.add_user("carl@acme.example", "acme").id
    assert carl == bob
    assert s.accounts.usage(f"user:{carl}", "2026-03") == 0
    assert s.policy.first_limit_notice(f"user:{carl}", "2026-03")
    s.close()


def test_an_older_database_is_migrated_and_drops_counters_of_users_removed_before(tmp_path: Path) -> None:
    # A user removed before migration 14 (possible once the purge had deleted their mail) left
    # counters under an id the next user added is given; the migration drops them, not the living's.
    s = Store.open(tmp_path / "db.sqlite")
    s.accounts.add_account("acme")
    anna = s.accounts.add_user("anna@acme.example", "acme").id
    conn = s.db.conn
    undo_migration_17(conn)
    conn.execute("ALTER TABLE mo DROP COLUMN repeated")  # migration 16 undone
    conn.execute("DROP INDEX mo_copies")  # migration 15 undone
    conn.execute("ALTER TABLE mo DROP COLUMN acked_at")
    conn.execute("DROP INDEX emails_user")
    conn.execute("ALTER TABLE accounts DROP COLUMN resumed_after_message")
    conn.execute("UPDATE schema_version SET version = 12")
    s.accounts.add_usage([f"user:{anna}", f"user:{anna + 1}", "account:1"], ["2026-03"], 2)
    for scope in (f"user:{anna}", f"user:{anna + 1}"):
        s.policy.first_limit_notice(scope, "2026-03")
    s.close()
    s = Store.open(tmp_path / "db.sqlite")
    try:
        conn = s.db.conn
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        scopes = [r[0] for r in conn.execute("SELECT scope FROM usage ORDER BY scope")]
        assert scopes == ["account:1", f"user:{anna}"]
        assert [r[0] for r in conn.execute("SELECT scope FROM limit_notices")] == [f"user:{anna}"]
        s.policy.resume_account(1)
        assert conn.execute("SELECT resumed_after_message FROM accounts").fetchone()[0] == 0
    finally:
        s.close()


def test_migration_15_counts_mos_stored_before_as_acknowledged_when_received(tmp_path: Path) -> None:
    # Before version 15 every stored MO was acknowledged right after it was stored.
    s = Store.open(tmp_path / "db.sqlite")
    conn = s.db.conn
    conn.execute(
        "INSERT INTO mo (link, source, destination, text, state, received_at)"
        " VALUES ('main', '+48601123456', '7355', 'KP123 A', 'premium', 1000.5)"
    )
    undo_migration_17(conn)
    conn.execute("ALTER TABLE mo DROP COLUMN repeated")
    conn.execute("DROP INDEX mo_copies")
    conn.execute("ALTER TABLE mo DROP COLUMN acked_at")
    conn.execute("UPDATE schema_version SET version = 14")
    s.close()
    s = Store.open(tmp_path / "db.sqlite")
    try:
        rows = s.db.conn.execute("SELECT received_at, acked_at, repeated FROM mo").fetchall()
        assert rows == [(1000.5, 1000.5, 0)]  # and migration 16: none was a repeat on its connection
        assert s.db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        s.close()


def test_migration_17_keeps_each_answer_with_its_conversations_account(tmp_path: Path) -> None:
    # Before version 17 an answer was billed through its conversation's account, read at billing
    # time; the answers matched before keep the account their conversation has at the migration.
    s = Store.open(tmp_path / "db.sqlite")
    conn = s.db.conn
    acme = s.accounts.add_account("acme").id
    conv = ConversationsRepo(s.db, s.clock).record_mt(
        phone="+48601123456", number="+48100200300", user_email="anna@acme.example", account_id=acme,
        domain="sms.example.com", header_message_id=None, subject=None, text="At 10?",
    )  # fmt: skip
    for state, conversation in (("mailed", conv), ("unmatched", None)):
        conn.execute(
            "INSERT INTO mo (link, source, destination, text, state, conversation_id, received_at)"
            " VALUES ('main', '+48601123456', '+48100200300', 'Yes', ?, ?, 1000.5)",
            (state, conversation),
        )
    undo_migration_17(conn)
    conn.execute("UPDATE schema_version SET version = 16")
    s.close()
    s = Store.open(tmp_path / "db.sqlite")
    try:
        rows = s.db.conn.execute("SELECT state, account_id FROM mo ORDER BY id").fetchall()
        assert rows == [("mailed", acme), ("unmatched", None)]
        assert s.db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        s.close()


def test_a_database_a_restart_cannot_fix_is_told_from_one_that_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `smsgw run` exits 3 (not restarted by the unit) only for what no restart fixes; a lock held
    # for now (as a full disk or an I/O error) exited 3 too, and the gateway stayed down once it passed.
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreUnusable, match="cannot be read"):
        Store.open(junk)
    path = tmp_path / "db.sqlite"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 100)
    try:
        with pytest.raises(StoreError, match="cannot be opened now") as raised:
            Store.open(path)
        assert not isinstance(raised.value, StoreUnusable)
    finally:
        holder.close()
    Store.open(path).close()  # once the lock is gone, it opens
