"""The store's everyday promises, on a real SQLite file: durable accepts in WAL, group commit,
duplicates, concatenation references, and the helpers other test modules import
(`Clock`, `acceptance`, the `store` fixture, `vm_steps`, the `undo_migration_*` steps). Opening and
migrating, commits, claims, reports and cut-short parts have modules of their own (test_store_*.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.smtp.accept import accept
from gateway.store.db import Acceptance, NewMessage, NewPart, Store

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def acceptance(recipients: list[str], parts: int = 1, dedup: str | None = None) -> Acceptance:
    msgs = [
        NewMessage(
            r,
            "+48100200300",
            "x" * parts,
            0,
            [NewPart(i + 1, 0, b"x", b"", "x") for i in range(parts)],
            concatenated=parts > 1,
        )
        for r in recipients
    ]
    return Acceptance(
        "anna@acme.example", "127.0.0.1", None, None, "id@x", dedup, "", "x" * parts, msgs, 3600
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "db.sqlite", clock=Clock())


async def test_accept_is_durable_and_in_wal(store: Store) -> None:
    # 250 depends on this: WAL with synchronous=FULL, and the rows are there after commit.
    assert store.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    res = await accept(store, acceptance(["+48601123456", "+48601123457"], parts=2))
    assert len(res.message_ids) == 2
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 4


async def test_group_commit_batches_concurrent_accepts(store: Store) -> None:
    # Many sessions at once share commits, yet each gets its own result.
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    results = await asyncio.gather(*(accept(store, acceptance([f"+4860112{i:04d}"])) for i in range(50)))
    store.db.conn.set_trace_callback(None)
    assert len({r.email_id for r in results}) == 50
    assert store.admin.count_messages() == 50
    assert statements.count("COMMIT") == 1


async def test_duplicate_mail_is_accepted_once(store: Store) -> None:
    # R-1.8 / F2: the same Message-ID and content again produces no new SMS.
    first = await accept(store, acceptance(["+48601123456"], dedup="k1"))
    second = await accept(store, acceptance(["+48601123456"], dedup="k1"))
    assert first.message_ids and second.email_id is None and second.duplicates == 1
    assert store.admin.count_messages() == 1


async def test_concat_reference_rotates_per_destination(store: Store) -> None:
    # Two long texts to one phone must not share a UDH reference.
    await accept(store, acceptance(["+48601123456"], parts=2))
    await accept(store, acceptance(["+48601123456"], parts=2))
    udhs = [r[0] for r in store.db.conn.execute("SELECT udh FROM parts WHERE seq = 1 ORDER BY id")]
    assert udhs[0][:3] == b"\x05\x00\x03" and udhs[0][3] != udhs[1][3]


def undo_migration_17(conn: sqlite3.Connection) -> None:
    undo_migration_18(conn)
    conn.execute("DROP INDEX mo_billing")
    conn.execute("ALTER TABLE mo DROP COLUMN account_id")


def undo_migration_18(conn: sqlite3.Connection) -> None:
    undo_migration_22(conn)
    conn.execute("DROP INDEX mo_incomplete")
    conn.execute("ALTER TABLE mo DROP COLUMN follows")
    conn.execute("ALTER TABLE mo DROP COLUMN seqs")


def undo_migration_22(conn: sqlite3.Connection) -> None:
    undo_migration_23(conn)
    conn.execute("ALTER TABLE mo DROP COLUMN smsc_time")


def undo_migration_23(conn: sqlite3.Connection) -> None:
    undo_migration_24(conn)
    conn.execute("ALTER TABLE premium_mo DROP COLUMN follows")


def undo_migration_24(conn: sqlite3.Connection) -> None:
    undo_migration_25(conn)
    conn.execute("ALTER TABLE messages DROP COLUMN rcpt")


def undo_migration_25(conn: sqlite3.Connection) -> None:
    undo_migration_26(conn)
    conn.execute("ALTER TABLE conversations DROP COLUMN refs")


def undo_migration_26(conn: sqlite3.Connection) -> None:
    undo_migration_27(conn)
    conn.execute("ALTER TABLE messages DROP COLUMN bulk")


def undo_migration_27(conn: sqlite3.Connection) -> None:
    undo_migration_28(conn)
    conn.execute("ALTER TABLE parts DROP COLUMN via")


def undo_migration_28(conn: sqlite3.Connection) -> None:
    undo_migration_29(conn)
    conn.execute("DROP INDEX parts_counts")
    conn.execute("DROP INDEX messages_counts")


def undo_migration_29(conn: sqlite3.Connection) -> None:
    undo_migration_30(conn)
    conn.execute("DROP INDEX outbox_age")


def undo_migration_30(conn: sqlite3.Connection) -> None:
    undo_migration_31(conn)
    conn.execute("DROP INDEX conversations_user")
    conn.execute("DROP INDEX conversations_account")


def undo_migration_31(conn: sqlite3.Connection) -> None:
    undo_migration_32(conn)
    conn.execute("DROP TABLE purged_counts")


def undo_migration_32(conn: sqlite3.Connection) -> None:
    undo_migration_33(conn)
    conn.execute("ALTER TABLE outbox DROP COLUMN refused_at")
    conn.execute("ALTER TABLE outbox DROP COLUMN unanswered")
    conn.execute("ALTER TABLE outbox DROP COLUMN fallback")
    conn.execute("ALTER TABLE outbox DROP COLUMN mo_ref")


def undo_migration_33(conn: sqlite3.Connection) -> None:
    undo_migration_35(conn)
    conn.execute("ALTER TABLE mo DROP COLUMN parts_at")


def undo_migration_35(conn: sqlite3.Connection) -> None:
    undo_migration_43(conn)
    undo_migration_42(conn)
    conn.execute("DROP INDEX parts_account_due")
    conn.execute("ALTER TABLE parts DROP COLUMN account_id")
    conn.execute(
        "CREATE INDEX messages_waiting ON messages(account_id, id)"
        " WHERE state NOT IN ('submitted', 'delivered', 'failed', 'expired', 'cancelled', 'unreported')"
    )


def undo_migration_42(conn: sqlite3.Connection) -> None:
    conn.execute("DROP INDEX premium_answers_password")
    conn.execute("ALTER TABLE premium_answers DROP COLUMN envelope")
    conn.execute("ALTER TABLE premium_answers DROP COLUMN password")


def undo_migration_43(conn: sqlite3.Connection) -> None:
    undo_migration_44(conn)
    conn.execute("ALTER TABLE accounts DROP COLUMN cut_from")


def undo_migration_44(conn: sqlite3.Connection) -> None:
    undo_migration_45(conn)
    conn.execute("ALTER TABLE conversations DROP COLUMN name")


def undo_migration_45(conn: sqlite3.Connection) -> None:
    undo_migration_46(conn)
    conn.execute("ALTER TABLE accounts DROP COLUMN auto_generated")


def undo_migration_46(conn: sqlite3.Connection) -> None:
    undo_migration_47(conn)
    conn.execute("ALTER TABLE emails DROP COLUMN envelope")


def undo_migration_47(conn: sqlite3.Connection) -> None:
    undo_migration_48(conn)
    conn.execute("ALTER TABLE accounts DROP COLUMN inbound_address")


def undo_migration_48(conn: sqlite3.Connection) -> None:
    undo_migration_50(conn)
    conn.execute("ALTER TABLE accounts DROP COLUMN countries")


def undo_migration_50(conn: sqlite3.Connection) -> None:
    undo_migration_51(conn)
    for table, column in (
        ("messages", "notify"),
        ("messages", "orcpt"),
        ("emails", "dsn_ret"),
        ("emails", "envid"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")


def undo_migration_51(conn: sqlite3.Connection) -> None:
    undo_migration_53(conn)
    conn.execute("DROP INDEX audit_at")


def undo_migration_53(conn: sqlite3.Connection) -> None:
    undo_migration_54(conn)
    for ref in ("message_ref", "mo_ref", "email_ref", "premium_ref"):
        conn.execute(f"DROP INDEX outbox_{ref}")
    conn.execute("ALTER TABLE outbox DROP COLUMN premium_ref")
    conn.execute("ALTER TABLE outbox DROP COLUMN email_ref")


def undo_migration_54(conn: sqlite3.Connection) -> None:
    undo_migration_60(conn)
    conn.execute("ALTER TABLE emails DROP COLUMN numbers")
    conn.execute("ALTER TABLE dlrs DROP COLUMN phone")


def undo_migration_60(conn: sqlite3.Connection) -> None:
    undo_migration_61(conn)
    conn.execute("ALTER TABLE premium_mo DROP COLUMN parts_at")


def undo_migration_61(conn: sqlite3.Connection) -> None:
    undo_migration_62(conn)
    for trigger in ("premium_mo_update_generation", "premium_mo_delete_generation"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE premium_generation")
    for index in ("premium_mo_account_month", "premium_mo_month", "users_account"):
        conn.execute(f"DROP INDEX {index}")


def undo_migration_62(conn: sqlite3.Connection) -> None:
    undo_migration_63(conn)
    conn.execute("DROP INDEX parts_link_state_smsc")
    conn.execute("CREATE INDEX parts_smsc ON parts(link, smsc_id)")
    conn.execute("CREATE INDEX parts_counts ON parts(link, state) WHERE id > 0")


def undo_migration_63(conn: sqlite3.Connection) -> None:
    undo_migration_64(conn)
    for index in ("mo_texts", "mo_stamps"):
        conn.execute(f"DROP INDEX {index}")


def undo_migration_64(conn: sqlite3.Connection) -> None:
    undo_migration_65(conn)
    conn.execute("ALTER TABLE mo DROP COLUMN answered_message_id")


def undo_migration_65(conn: sqlite3.Connection) -> None:
    undo_migration_66(conn)
    conn.execute("ALTER TABLE mo DROP COLUMN parts")
    conn.execute("ALTER TABLE mo DROP COLUMN protocol")


def undo_migration_66(conn: sqlite3.Connection) -> None:
    undo_migration_67(conn)
    conn.execute("ALTER TABLE outbox DROP COLUMN bounced")
    conn.execute("DROP INDEX outbox_naming")
    conn.execute("CREATE INDEX outbox_naming ON outbox(kind) WHERE kind IN ('not-sent', 'bounce-forward')")


def undo_migration_67(conn: sqlite3.Connection) -> None:
    undo_migration_68(conn)
    conn.execute("DROP INDEX parts_sent")


def undo_migration_68(conn: sqlite3.Connection) -> None:
    undo_migration_69(conn)
    conn.execute("UPDATE outbox SET kind = 'dsn-group' WHERE kind = 'notify-group'")
    conn.execute("DROP INDEX outbox_naming")
    conn.execute(
        "CREATE INDEX outbox_naming ON outbox(kind) WHERE kind IN ('not-sent', 'bounce-forward', 'dsn-group')"
    )


def undo_migration_69(conn: sqlite3.Connection) -> None:
    undo_migration_70(conn)
    conn.execute("ALTER TABLE parts DROP COLUMN claimed_at")


def undo_migration_70(conn: sqlite3.Connection) -> None:
    undo_migration_71(conn)
    conn.execute("DROP INDEX emails_dedup")
    conn.execute("CREATE INDEX emails_dedup ON emails(dedup_key)")


def undo_migration_71(conn: sqlite3.Connection) -> None:
    undo_migration_72(conn)
    conn.execute("ALTER TABLE parts DROP COLUMN last_claimed_at")
    conn.execute("ALTER TABLE parts DROP COLUMN prior_claimed_at")


def undo_migration_72(conn: sqlite3.Connection) -> None:
    undo_migration_73(conn)
    conn.execute("DROP INDEX outbox_header_message_id")
    conn.execute("ALTER TABLE outbox DROP COLUMN header_message_id")


def undo_migration_73(conn: sqlite3.Connection) -> None:
    undo_migration_74(conn)
    conn.execute("DROP INDEX messages_dedup")
    conn.execute(
        "CREATE UNIQUE INDEX messages_dedup ON messages(dedup_key, recipient) WHERE dedup_key IS NOT NULL"
    )


def undo_migration_74(conn: sqlite3.Connection) -> None:
    undo_migration_75(conn)
    conn.execute("ALTER TABLE parts DROP COLUMN resent_after")


def undo_migration_75(conn: sqlite3.Connection) -> None:
    undo_migration_76(conn)
    conn.execute("DROP INDEX outbox_replies")


def undo_migration_76(conn: sqlite3.Connection) -> None:
    undo_migration_77(conn)
    conn.execute("DROP INDEX mo_phone_times")


def undo_migration_77(conn: sqlite3.Connection) -> None:
    undo_migration_78(conn)
    conn.execute(
        "CREATE INDEX IF NOT EXISTS outbox_replies ON outbox(rcpt COLLATE NOCASE, created_at)"
        " WHERE kind = 'reply'"
    )


def undo_migration_78(conn: sqlite3.Connection) -> None:
    undo_migration_79(conn)
    conn.execute("DROP TRIGGER optouts_update_generation")
    conn.execute(
        "CREATE TRIGGER optouts_update_generation AFTER UPDATE ON optouts"
        " BEGIN UPDATE settings_generation SET value = random(); END"
    )


def undo_migration_79(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TRIGGER optouts_insert_generation")
    conn.execute("ALTER TABLE settings_generation DROP COLUMN optouts_added")
    conn.execute(
        "CREATE TRIGGER optouts_insert_generation AFTER INSERT ON optouts\n"
        "BEGIN UPDATE settings_generation SET value = random(); END"
    )


def vm_steps(conn: sqlite3.Connection, work: Callable[[], T], every: int = 100) -> tuple[int, T]:
    """(SQLite VM instructions / `every`, result) of `work` on `conn`: a cost that does not depend on the
    machine's speed, for tests that a statement's work does not grow with a table (`every=1` for a
    lookup of a few dozen instructions, which a count by the hundred would not tell apart)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, every)
    try:
        result = work()
    finally:
        conn.set_progress_handler(None, 0)
    return steps, result
