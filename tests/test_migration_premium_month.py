"""Migration 61: the indexes a month's premium figures and an account's users are read by, and the
generation that says a vote stored before changed what the figures count.

A month of 300,000 votes was grouped on the index of `received_at` plus each vote's whole row
(0.8-2.4 s at each load of the panel's premium page); an account's users were found by reading
every user. Real SQLite files, opened as the daemon opens them (`Store.open`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.premium.repo import PremiumRepo
from gateway.premium.stats import grouped
from gateway.store.accountdomains import account_domains
from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.test_store import undo_migration_61


def plans(conn: sqlite3.Connection, read: object) -> list[str]:
    """The plan of each statement `read()` ran on `conn`, as EXPLAIN QUERY PLAN gives it."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        read()  # type: ignore[operator]
    finally:
        conn.set_trace_callback(None)
    return [" | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in seen]


def seeded(path: Path) -> tuple[Store, int, int]:
    s = Store.open(path)
    acme = s.accounts.add_account("acme").id
    for n in range(20):
        s.accounts.add_user(f"u{n}@acme.example", "acme")
    premium = PremiumRepo(s.db, s.clock)
    service = premium.add_service("KP70", acme, "boss@acme.example", [], ["boss@acme.example"])
    for n in range(50):
        s.db.conn.execute(
            "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts, price,"
            " commission, text, state, received_at) VALUES (?, '7355', '+48601000009', ?, ?, 'KP70', 1, 300,"
            " 110, 'x', 'mailed', ?)",
            (100 + n, service, acme, 1_000_000.0 + n),
        )
    return s, acme, service


def test_a_months_votes_are_grouped_on_covering_indexes_and_an_accounts_users_on_its_index(
    tmp_path: Path,
) -> None:
    s, acme, _ = seeded(tmp_path / "smsgw.db")
    conn = s.db.conn
    try:
        (operator,) = plans(conn, lambda: grouped(conn, 999_000.0, 2_000_000.0))
        assert "COVERING INDEX premium_mo_month" in operator, operator
        (account,) = plans(conn, lambda: grouped(conn, 999_000.0, 2_000_000.0, acme, upto=40))
        assert "COVERING INDEX premium_mo_account_month" in account, account
        # The votes stored since the page's last read: by id, however long the month.
        (since,) = plans(conn, lambda: grouped(conn, 999_000.0, 2_000_000.0, acme, after=40, upto=50))
        assert "INTEGER PRIMARY KEY" in since and "premium_mo_" not in since, since
        (domains,) = plans(conn, lambda: account_domains(conn, acme, "acme.example", 5))
        assert "INDEX users_account" in domains and "SCAN users" not in domains, domains
    finally:
        s.close()


def test_an_upgraded_database_gets_the_indexes_and_a_generation_only_counted_changes_move(
    tmp_path: Path,
) -> None:
    path = tmp_path / "smsgw.db"
    s, acme, _ = seeded(path)
    undo_migration_61(s.db.conn)
    s.db.conn.execute("UPDATE schema_version SET version = 60")
    s.close()
    s = Store.open(path)
    conn = s.db.conn
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"users_account", "premium_mo_month", "premium_mo_account_month"} <= indexes
        assert conn.execute("SELECT COUNT(*) FROM premium_generation").fetchone()[0] == 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

        def generation() -> int:
            return int(conn.execute("SELECT value FROM premium_generation").fetchone()[0])

        was = generation()
        premium = PremiumRepo(s.db, s.clock)
        first = conn.execute("SELECT MIN(id) FROM premium_mo").fetchone()[0]
        premium.settle_mo(first, "mailed", "answered")  # not among the figures
        conn.execute("UPDATE premium_mo SET text = '' WHERE id = ?", (first,))
        assert generation() == was
        for change in (
            lambda: premium.rebind_mo(first, acme + 1),
            lambda: premium.release_mo(first + 1, "fallback", "service removed"),
            lambda: conn.execute("UPDATE premium_mo SET price = 0 WHERE id = ?", (first + 2,)),
            lambda: conn.execute("DELETE FROM premium_mo WHERE id = ?", (first + 3,)),
        ):
            change()
            assert generation() != was
            was = generation()
    finally:
        s.close()
