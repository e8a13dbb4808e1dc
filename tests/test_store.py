"""The store's promises, on a real SQLite file: durability settings, states, DLR matching, recovery."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.conversations.repo import ConversationsRepo
from gateway.smtp.accept import accept
from gateway.store import db as db_module
from gateway.store import retention
from gateway.store.commit import UNSYNCED
from gateway.store.db import Acceptance, NewMessage, NewPart, Store, StoreError, StoreReplaced, StoreUnusable
from gateway.store.partnotes import AWAITING_LATE, LINK_LOST, RECOVERED
from gateway.store.schema import SCHEMA_VERSION

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


async def test_report_before_submit_answer_is_applied(store: Store) -> None:
    # A DLR that overtakes submit_sm_resp is kept and applied once the id is known.
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    assert store.queue.record_report("main", "abc", "delivered", None, "raw") == []
    finished = store.queue.mark_submitted(part.id, "main", "abc")
    assert [f.state for f in finished] == ["delivered"]


async def test_reports_with_same_key_match_oldest_first(store: Store) -> None:
    # CIMD2 keys (timestamp:number) repeat within a second; reports resolve parts FIFO.
    await accept(store, acceptance(["+48601123456"]))
    await accept(store, acceptance(["+48601123456"]))
    a, b = store.queue.claim_due(10)
    store.queue.mark_submitted(a.id, "c", "261121045908:48601123456")
    store.queue.mark_submitted(b.id, "c", "261121045908:48601123456")
    store.queue.record_report("c", "261121045908:48601123456", "failed", "unknown subscriber", "")
    store.queue.record_report("c", "261121045908:48601123456", "delivered", None, "")
    states = [r[0] for r in store.db.conn.execute("SELECT state FROM messages ORDER BY id")]
    assert states == ["failed", "delivered"]


async def test_failed_part_fails_message_once_naming_the_part(store: Store) -> None:
    # one status per message; the failure names which part.
    await accept(store, acceptance(["+48601123456"], parts=3))
    parts = store.queue.claim_due(10)
    for p in parts:
        store.queue.mark_submitted(p.id, "main", f"id{p.seq}")
    assert store.queue.record_report("main", "id1", "delivered", None, "") == []
    finished = store.queue.record_report("main", "id2", "failed", "UNDELIV err:001", "")
    assert len(finished) == 1 and finished[0].state == "failed"
    # ... and what became of the others: naming only the failed part read as if they had arrived.
    said = "part 2 of 3: UNDELIV err:001 (part 1 delivered; part 3 sent, report pending)"
    assert finished[0].reason == said
    assert store.queue.record_report("main", "id3", "failed", "UNDELIV", "") == []
    # Parts not sent yet when one fails are not sent at all, and the reason says so.
    await accept(store, acceptance(["+48601123457"], parts=3))
    first, *_rest = store.queue.claim_due(1)
    store.queue.mark_submitted(first.id, "main", "id4")
    (failed,) = store.queue.record_report("main", "id4", "failed", "UNDELIV", "")
    assert failed.reason == "part 1 of 3: UNDELIV (parts 2, 3 not sent)"


async def test_crash_recovery_requeues_active_parts(tmp_path: Path) -> None:
    # Parts claimed when the process died go back to the queue on the next open.
    s = Store.open(tmp_path / "db.sqlite")
    await accept(s, acceptance(["+48601123456"]))
    (part,) = s.queue.claim_due(10)
    assert not part.maybe_sent
    s.close()
    s2 = Store.open(tmp_path / "db.sqlite")
    assert s2.queue.recover_active() == [part.id]  # named in the log
    (again,) = s2.queue.claim_due(10)
    assert again.maybe_sent  # its submit may have reached the SMSC: the next one may be a duplicate


async def test_a_claimed_part_tells_whether_an_smsc_may_have_it_already(store: Store) -> None:
    # Its note says so after an unanswered submit, a lost connection or a crash; after a plain
    # failure (a refusal for now, a submit that never left) it does not.
    notes = [f"no answer; {AWAITING_LATE}", f"reset; {LINK_LOST}", RECOVERED, "throttled", None]
    await accept(store, acceptance([f"+4860112345{i}" for i in range(len(notes))]))
    claimed = store.queue.claim_due(10)
    for part, note in zip(claimed, notes, strict=True):
        store.queue.release(part.id, delay=0, error=note, count=True)
    assert [p.maybe_sent for p in store.queue.claim_due(10)] == [True, True, True, False, False]


async def test_expired_parts_are_not_sent_late(store: Store) -> None:
    # past the validity, queued parts expire and the message finishes once.
    await accept(store, acceptance(["+48601123456"]))
    store.clock.t += 3601  # type: ignore[attr-defined]
    finished = store.queue.expire_due()
    assert [f.state for f in finished] == ["expired"]
    assert "before it could be sent" in (finished[0].reason or "")
    assert store.queue.claim_due(10) == []


async def test_a_part_expiring_after_an_unanswered_attempt_is_not_called_unsent(store: Store) -> None:
    # The SMSC never answered its submit (or a crash cut the answer off): it may have the SMS, so
    # the sender must not read that it was never sent.
    for note in (f"no submit_sm_resp in time; {AWAITING_LATE}", RECOVERED):
        await accept(store, acceptance(["+48601123456"]))
        (part,) = store.queue.claim_due(10)
        store.queue.release(part.id, delay=60, error=note, count=True)
        store.clock.t += 3601  # type: ignore[attr-defined]
        (finished,) = store.queue.expire_due()
        assert finished.state == "expired"
        # Delivery unknown either way; only the unanswered submit is said to have maybe reached the
        # phone (a recovered part may have been waiting for its link's pacing, never sent).
        assert "delivery unknown" in (finished.reason or "") and "before it could" not in (
            finished.reason or ""
        )


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
    conn.execute("ALTER TABLE mo DROP COLUMN parts")
    conn.execute("ALTER TABLE mo DROP COLUMN protocol")


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


async def test_retention_purge_drops_details_and_keeps_usage(tmp_path: Path) -> None:
    # finished mail older than the retention goes; billing totals (usage) stay.
    clock = Clock()
    s = Store.open(tmp_path / "db.sqlite", clock=clock)
    a = acceptance(["+48601123456"])
    await accept(s, a)
    with s.db.transaction():
        s.accounts.add_usage(["account:1"], ["2023-11"], 1)
    (part,) = s.queue.claim_due(10)
    s.queue.mark_submitted(part.id, "main", "x1")
    s.queue.record_report("main", "x1", "delivered", None, "raw")
    await accept(s, acceptance(["+48601123457"]))  # still queued: must survive any purge
    with s.db.transaction():  # the counters of long SMS to both phones (a list of numbers kept for ever)
        s.db.conn.executemany(
            "INSERT INTO concat_refs (destination, next_ref) VALUES (?, 7)",
            [("+48601123456",), ("+48601123457",)],
        )
    clock.t += 91 * 86400
    assert await retention.purge_before(s, clock.t - 90 * 86400) == 1
    assert [r[0] for r in s.db.conn.execute("SELECT recipient FROM messages")] == ["+48601123457"]
    assert s.db.conn.execute("SELECT destination FROM concat_refs").fetchall() == [("+48601123457",)]
    assert s.db.conn.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 0
    assert s.accounts.usage("account:1", "2023-11") == 1


def test_use_from_another_thread_raises(store: Store) -> None:
    # The connection belongs to the thread that opened it: a purge or any verb run in a worker
    # thread would share the loop's transaction, so it is refused loudly instead of working.
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            store.queue.claim_due(10)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(10)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "thread" in str(errors[0])
    assert store.queue.claim_due(10) == []  # the owner thread still works


async def test_after_commit_runs_once_committed_and_not_on_rollback(store: Store) -> None:
    # Callbacks registered inside a transaction fire after COMMIT; a failed write() piece drops its own.
    seen: list[str] = []
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    def ok() -> None:
        store.db.after_commit(lambda: seen.append(f"ok after {statements[-1]}"))

    def failing() -> None:
        store.db.after_commit(lambda: seen.append("failed"))
        raise ValueError("boom")

    results = await asyncio.gather(store.write(ok), store.write(failing), return_exceptions=True)
    store.db.conn.set_trace_callback(None)
    assert isinstance(results[1], ValueError)
    assert seen == ["ok after COMMIT"]
    with pytest.raises(ValueError), store.db.transaction():
        store.db.after_commit(lambda: seen.append("rolled back"))
        raise ValueError("boom")
    assert seen == ["ok after COMMIT"]


async def test_after_commit_waits_for_the_group_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With group fsync the callback runs only once the WAL holding the commit is on disk.
    s = Store.open(tmp_path / "db.sqlite", group_fsync=True)
    order: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    await s.write(lambda: s.db.after_commit(lambda: order.append("callback")))
    await s.drain()
    assert order == ["fsync", "callback"]
    s.close()


@pytest.fixture
def serving(tmp_path: Path) -> Store:
    """The daemon's store: group fsync, and every write through `write()`."""
    s = Store.open(tmp_path / "db.sqlite", clock=Clock(), group_fsync=True)
    s.db.serve()
    return s


async def test_writes_arriving_during_an_fsync_share_the_next_transaction(
    serving: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What arrives while the WAL is being fsynced cannot be answered before the next fsync anyway:
    # it goes in one transaction when the fsync is done, not one small transaction per loop turn.
    s = serving
    gate = threading.Event()
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (gate.wait(10), real_fsync(fd))[1])
    begins: list[str] = []
    s.db.conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    first = asyncio.ensure_future(accept(s, acceptance(["+48601000000"])))
    while not begins:
        await asyncio.sleep(0)
    later = []
    for i in range(5):  # each in a loop turn of its own, while the first fsync hangs
        later.append(asyncio.ensure_future(accept(s, acceptance([f"+4860100000{i + 1}"]))))
        await asyncio.sleep(0.005)
    assert len(begins) == 1 and not first.done()
    gate.set()
    results = await asyncio.gather(first, *later)
    assert all(r.message_ids for r in results)
    assert len(begins) == 2, begins
    s.db.conn.set_trace_callback(None)
    s.close()


async def test_a_failed_fsync_fails_its_writers_and_every_later_write_and_stops_the_daemon(
    serving: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel reports a write-back error once and may drop the pages: a later fsync that succeeds
    # says nothing about them, while their rows stay visible (a retry would hear "already accepted").
    s = serving
    stops: list[str | None] = []
    s.db.on_replaced = lambda: stops.append(s.db.replaced)
    real_fsync = os.fsync
    failures = [OSError(5, "Input/output error")]

    def fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    reader = sqlite3.connect(s.db.path)  # another process's reader: the WAL outlives our close
    reader.execute("SELECT COUNT(*) FROM messages").fetchone()
    with pytest.raises(StoreReplaced, match="fsync failed"):
        await accept(s, acceptance(["+48601000001"]))  # its client hears 451, never 250
    with pytest.raises(StoreReplaced):
        await accept(s, acceptance(["+48601000002"]))  # nor does anyone after it
    assert stops == [UNSYNCED]  # the daemon is told to stop, once
    s.close()
    # The WAL is the database's own, not a stranger's to throw away: the next start replays it.
    assert await asyncio.to_thread(os.path.exists, f"{s.db.path}-wal")
    reader.close()
    again = Store.open(s.db.path)
    assert again.admin.count_messages() == 1  # the first mail's rows, whatever the restart decides
    again.close()


async def test_a_database_error_at_begin_fails_the_batch_instead_of_leaving_it_waiting(
    serving: Store,
) -> None:
    # A file overwritten in place (same inode: the file check cannot tell) or a closed connection:
    # BEGIN raises something other than "locked". The callers hear it; none waits forever.
    s = serving
    real = s.db._conn

    class Malformed:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("BEGIN"):
                raise sqlite3.DatabaseError("database disk image is malformed")
            return real.execute(sql, *args)

    s.db._conn = Malformed()  # type: ignore[assignment]
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        await asyncio.wait_for(accept(s, acceptance(["+48601000001"])), 5)
    s.db._conn = real
    assert (await accept(s, acceptance(["+48601000002"]))).message_ids  # and the store goes on
    s.close()


async def test_a_piece_raising_a_base_exception_fails_its_batch_and_leaves_no_transaction_open(
    serving: Store,
) -> None:
    s = serving

    class Interrupted(BaseException):
        pass

    def interrupted() -> None:
        raise Interrupted()

    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx["exception"]))
    try:
        with pytest.raises(StoreError, match="interrupted"):
            await asyncio.wait_for(s.db.write(interrupted), 5)
    finally:
        loop.set_exception_handler(None)
    assert [type(e) for e in reported] == [Interrupted]  # still raised, for the loop to report
    assert not s.db.conn.in_transaction
    assert (await accept(s, acceptance(["+48601000002"]))).message_ids
    s.close()


def vm_steps(conn: sqlite3.Connection, work: Callable[[], T]) -> tuple[int, T]:
    """(SQLite VM instructions / 100, result) of `work` on `conn`: a cost that does not depend on the
    machine's speed, for tests that a statement's work does not grow with a table."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 100)
    try:
        result = work()
    finally:
        conn.set_progress_handler(None, 0)
    return steps, result


async def test_claim_work_does_not_grow_with_the_queue(tmp_path: Path) -> None:
    # Restart with 100,000 SMS queued: a claim must cost index steps per part claimed, not per
    # part waiting (a planner choice once made each claim walk the whole queue: seconds per claim).
    # Measured in SQLite VM instructions, which do not depend on the machine's speed.
    async def claim_steps(queued: int, name: str) -> int:
        s = Store.open(tmp_path / name, clock=Clock())
        account = s.accounts.add_account("acme").id
        for start in range(0, queued, 100):
            base = acceptance([f"+486011{i:05d}" for i in range(start, start + 100)])
            await accept(s, dataclasses.replace(base, account_id=account))
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        assert len(claimed) == 10
        s.close()
        return steps

    small = await claim_steps(200, "small.sqlite")
    large = await claim_steps(6000, "large.sqlite")
    assert large < 3 * small + 50, (small, large)


async def test_a_claim_does_not_walk_an_accounts_mail_that_is_not_due(tmp_path: Path) -> None:
    # A campaign of 100,000 SMS held for quiet hours (or deferred, or a suspended account's) stays
    # in the account's index of unfinished messages: each claim walked all of them looking for due
    # parts, 1.4 M VM steps a claim (bench/statements.py --backlog 100000). The account's due SMS
    # past the walk come from the due index, in due order. Measured in SQLite VM instructions.
    async def claim_steps(held: int, name: str) -> tuple[int, int]:
        clock = Clock()
        s = Store.open(tmp_path / name, clock=clock)
        account = s.accounts.add_account("acme").id
        for start in range(0, held + 10, 500):
            base = acceptance([f"+48601{i:06d}" for i in range(start, min(start + 500, held + 10))])
            await accept(s, dataclasses.replace(base, account_id=account))
        s.db.conn.execute(  # the oldest `held` wait for tomorrow; the last 10 are due
            "UPDATE parts SET state = 'deferred', next_attempt_at = ? WHERE id <= ?", (clock.t + 86400, held)
        )
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        s.close()
        return steps, len(claimed)

    small, small_claimed = await claim_steps(2000, "small.sqlite")
    large, large_claimed = await claim_steps(20000, "large.sqlite")
    assert small_claimed == large_claimed == 10
    assert large < 2 * small + 50, (small, large)


async def test_a_claim_does_not_read_other_accounts_due_parts_for_an_account_with_none(
    tmp_path: Path,
) -> None:
    # Account a's campaign is deferred (a throttling SMSC) with more than a claim used to walk, and b's
    # is due behind links that are full: each claim looked for a's due parts on the queue's due
    # index, past every due part of b (160,000 VM steps a claim with 20,000, linear in them). The
    # index of waiting parts by account (migration 35) finds a's in a few steps.
    async def claim_steps(others_due: int, name: str) -> tuple[int, int]:
        clock = Clock()
        s = Store.open(tmp_path / name, clock=clock)
        a = s.accounts.add_account("a").id
        b = s.accounts.add_account("b").id
        for start in range(0, 3000, 500):
            base = acceptance([f"+48601{i:06d}" for i in range(start, start + 500)])
            await accept(s, dataclasses.replace(base, account_id=a))
        s.db.conn.execute("UPDATE parts SET state = 'deferred', next_attempt_at = ?", (clock.t + 86400,))
        for start in range(0, others_due, 500):
            base = acceptance([f"+48602{i:06d}" for i in range(start, start + 500)])
            await accept(s, dataclasses.replace(base, account_id=b))
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        s.close()
        return steps, len(claimed)

    small, small_claimed = await claim_steps(1000, "small.sqlite")
    large, large_claimed = await claim_steps(20000, "large.sqlite")
    assert small_claimed == large_claimed == 10
    assert large < 2 * small + 20, (small, large)


async def test_a_claim_does_not_look_at_accounts_with_nothing_waiting(tmp_path: Path) -> None:
    # A gateway of 1,000 companies, ten with SMS waiting: each claim ran two statements for every
    # account of the accounts table (2,002 statements, 12 ms a claim, tens of claims a second at
    # full load). The accounts with parts waiting come from the index by account itself.
    async def claim_cost(accounts: int, name: str) -> tuple[int, int, int]:
        s = Store.open(tmp_path / name, clock=Clock())
        ids = [s.accounts.add_account(f"company{i}").id for i in range(accounts)]
        for k, account in enumerate(ids[:: accounts // 10]):
            base = acceptance([f"+48601{k:06d}", f"+48602{k:06d}"])
            await accept(s, dataclasses.replace(base, account_id=account))
        statements: list[str] = []
        s.db.conn.set_trace_callback(statements.append)
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        s.db.conn.set_trace_callback(None)
        s.close()
        return len(statements), steps, len({p.message_id for p in claimed})

    few, few_steps, few_claimed = await claim_cost(10, "few.sqlite")
    many, many_steps, many_claimed = await claim_cost(1000, "many.sqlite")
    assert few_claimed == many_claimed == 10  # one SMS from each account's two first: its turn
    assert many == few, (few, many)
    assert many_steps < 2 * few_steps + 20, (few_steps, many_steps)


async def test_a_claim_reads_of_each_account_what_it_can_win(tmp_path: Path) -> None:
    # 50 accounts with a campaign each, a claim of 200: each account can win 4 of them, but each
    # claim read twice the claim of every account (20,800 rows into Python; 0.14-0.3 s of the event
    # loop with 100 accounts at a claim of 500). After the first claim it reads about what the
    # accounts it found can win.
    s = Store.open(tmp_path / "many.sqlite", clock=Clock())
    for k in range(50):
        account = s.accounts.add_account(f"company{k}").id
        base = acceptance([f"+4860{k:02d}{i:05d}" for i in range(400)])
        await accept(s, dataclasses.replace(base, account_id=account))
    costs = []
    for _ in range(3):
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(200))
        costs.append(steps)
        per_account = collections.Counter(p.destination[:7] for p in claimed)
        assert len(claimed) == 200 and set(per_account.values()) == {4}, per_account
        s.db.conn.execute("UPDATE parts SET state = 'queued' WHERE state = 'active'")
    s.close()
    assert costs[1] < costs[0] / 4 and costs[2] < costs[0] / 4, costs


async def test_due_sms_go_oldest_first_whatever_their_due_times(store: Store) -> None:
    # Three SMS to one phone, all due; the two older ones were put back a moment apart (a lost
    # link, a throttle), the first after the third: by due time a claim of two took "1, 3", and the
    # phone got "Message 1, 3, 2" (tests/test_faults.py saw it once under load). Oldest first.
    await accept(store, acceptance(["+48601123456"]))
    await accept(store, acceptance(["+48601123456"]))
    await accept(store, acceptance(["+48601123456"]))
    now = store.clock()
    for pid, due in ((1, now - 10), (2, now - 1), (3, now - 5)):
        store.db.conn.execute(
            "UPDATE parts SET state = 'deferred', next_attempt_at = ? WHERE id = ?", (due, pid)
        )
    assert [p.id for p in store.queue.claim_due(2)] == [1, 2]


async def test_a_mail_to_many_recipients_keeps_ids_and_parts_with_their_recipients(store: Store) -> None:
    # The messages are inserted in one statement; each id and part still belongs to its recipient.
    numbers = [f"+4860112{i:04d}" for i in (7, 3, 9, 1)]
    res = await accept(store, acceptance(numbers, parts=2))
    recipients = [
        store.db.conn.execute("SELECT recipient FROM messages WHERE id = ?", (mid,)).fetchone()[0]
        for mid in res.message_ids
    ]
    assert recipients == numbers
    mismatched = store.db.conn.execute(
        "SELECT COUNT(*) FROM parts p JOIN messages m ON m.id = p.message_id"
        " WHERE p.destination != m.recipient"
    ).fetchone()[0]
    assert mismatched == 0
    assert store.db.conn.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 8


async def test_report_stored_before_a_restart_still_meets_its_submit_answer(tmp_path: Path) -> None:
    # The search for an early receipt is skipped while none is young; one left by the previous run
    # of the daemon counts too.
    path = tmp_path / "db.sqlite"
    clock = Clock()
    before = Store.open(path, clock=clock)
    await accept(before, acceptance(["+48601123456"]))
    (part,) = before.queue.claim_due(10)
    assert before.queue.record_report("main", "abc", "delivered", None, "raw") == []
    before.close()
    after = Store.open(path, clock=clock)
    finished = after.queue.mark_submitted(part.id, "main", "abc")
    assert [f.state for f in finished] == ["delivered"]
    after.close()


async def test_a_part_settled_by_a_late_answer_is_not_ended_again(store: Store) -> None:
    # A part claimed ahead whose earlier submit was answered late (accepted) must not be turned
    # into `expired` (and bounced) when its validity runs out before its re-send's turn.
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    store.queue.mark_submitted(part.id, "main", "abc")
    assert store.queue.mark_part_final(part.id, "expired", "validity period expired") == []
    row = store.db.conn.execute("SELECT p.state, m.state FROM parts p JOIN messages m ON m.id = p.message_id")
    assert row.fetchone() == ("submitted", "submitted")


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


async def test_a_repeated_report_is_kept_with_its_part_not_given_to_a_newer_sms_with_that_id(
    tmp_path: Path,
) -> None:
    # An SMSC sends a report again when our answer to it was lost. Kept unmatched, the repeat was
    # logged dlr.unmatched and taken as the early receipt of the next SMS given the same id: that
    # one was "delivered" before its phone had it.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        await accept(store, acceptance(["+48601123456"]))
        (first,) = store.queue.claim_due(10)
        store.queue.mark_submitted(first.id, "main", "abc")
        assert [f.state for f in store.queue.record_report("main", "abc", "delivered", None, "r")] == [
            "delivered"
        ]
        # A report of the other outcome is no repeat: it stays unmatched, the first final one kept.
        assert store.queue.record_report("main", "abc", "failed", "x", "other") == []
        unmatched = "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL"
        assert store.db.conn.execute(unmatched).fetchone() == (1,)
        store.db.conn.execute("DELETE FROM dlrs WHERE part_id IS NULL")
        clock.t += 5
        await accept(store, acceptance(["+48601999888"]))
        (second,) = store.queue.claim_due(10)
        clock.t += 1
        assert store.queue.record_report("main", "abc", "delivered", None, "r again") == []
        assert store.queue.mark_submitted(second.id, "main", "abc") == []  # the SMSC gave "abc" again
        rows = store.db.conn.execute("SELECT id, state FROM parts ORDER BY id").fetchall()
        assert rows == [(first.id, "delivered"), (second.id, "submitted")]
        dlrs = store.db.conn.execute("SELECT part_id FROM dlrs ORDER BY id").fetchall()
        assert dlrs == [(first.id,), (first.id,)]
    finally:
        store.close()
