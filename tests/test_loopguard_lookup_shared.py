"""The loop guard's lookup of a phone's latest answer mail to a sender starts from the phone, whose MOs
of the window are few, not from the sender's address, which may be one mailbox every phone answers to.

Through the index of answer mails by address (migration 75) it read every answer mail to that address
of ten minutes, each with its MO, and kept the phone's: a helpdesk that 3,000 phones answered to in ten
minutes cost some 21,000 SQLite instructions before each mail to a phone (bench/loopguard_lookup.py
--shared). Counted here in instructions (no clock), with the plan that reads the phone's MOs by time
(migration 76) and then their answer mails. What it finds is what it found: the answer mail's own time
in the window (also of an MO that waited before its mail was queued), after the round before, in a
state that reached the sender, the newest. Real SQLite files, new and upgraded from schema 75 (0.2.40).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.conversations import loopguard
from gateway.store.db import Db
from tests.test_store import undo_migration_76, vm_steps

NOW = 1_800_000_000.0
PHONE = "+48601000001"
HELPDESK = "helpdesk@acme.example"
AUTO_REPLY = "Prowadze, odpisze pozniej"
PLAN = [
    "SEARCH m USING INDEX mo_phone_times (source=? AND received_at>?)",
    "SEARCH o USING INDEX outbox_mo_ref (mo_ref=?)",
    "USE TEMP B-TREE FOR ORDER BY",
]


def answer(
    conn: sqlite3.Connection,
    source: str,
    rcpt: str,
    at: float,
    text: str,
    *,
    kind: str = "reply",
    state: str = "sent",
    received: float | None = None,
) -> None:
    """An MO of `source` received at `received` (at `at` unless it waited) and its mail queued at `at`."""
    mo = conn.execute(
        "INSERT INTO mo (link, source, destination, text, state, received_at)"
        " VALUES ('l', ?, '7355', ?, 'done', ?)",
        (source, text, at if received is None else received),
    ).lastrowid
    conn.execute(
        "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, mo_ref)"
        " VALUES (?, 'gw@gw.example', ?, x'00', ?, ?, ?, ?)",
        (kind, rcpt, state, at, at, mo),
    )


def round_mail(conn: sqlite3.Connection, at: float, text: str) -> None:
    """The helpdesk's mail at `at`, as the SMS to the phone it became."""
    email = conn.execute(
        "INSERT INTO emails (mail_from, text, received_at) VALUES (?, ?, ?)", (HELPDESK, text, at)
    ).lastrowid
    conn.execute(
        "INSERT INTO messages (email_id, recipient, source, text, coding, parts_total, state, created_at,"
        " expires_at) VALUES (?, ?, '7355', ?, 0, 1, 'delivered', ?, ?)",
        (email, PHONE, text, at, at + 86400),
    )


def fill(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    # 3,000 other phones answering the same helpdesk within the last ten minutes, and a month of
    # this phone's own older answers.
    for i in range(3000):
        answer(conn, f"+4860{i:07d}", HELPDESK, NOW - 1 - (i % 590), f"other {i}")
    for day in range(30):
        answer(conn, PHONE, HELPDESK, NOW - 86400 * (day + 1), AUTO_REPLY)
    # The loop: each of the helpdesk's mails (the rounds) a minute and a half after the phone's
    # answer mail. The latest answer's MO waited twenty minutes before its mail was queued.
    for n, at in enumerate((NOW - 2000, NOW - 1400, NOW - 800)):
        answer(conn, PHONE, HELPDESK, at - 100, AUTO_REPLY)
        round_mail(conn, at, f"Ticket #{n} received, we will answer soon")
    answer(conn, PHONE, "HelpDesk@acme.example", NOW - 300, AUTO_REPLY, received=NOW - 1500)
    answer(conn, PHONE, HELPDESK, NOW - 200, "not queued for this sender", kind="reply-fallback")
    answer(conn, PHONE, HELPDESK, NOW - 100, "never reached the sender", state="failed")
    answer(conn, "+48601000002", HELPDESK, NOW - 50, "another phone's")
    conn.execute("COMMIT")


def check(conn: sqlite3.Connection) -> None:
    lookup = loopguard._answer_between
    assert lookup(conn, PHONE, HELPDESK, None, NOW) == AUTO_REPLY  # the waited one, at NOW - 300
    assert lookup(conn, PHONE, HELPDESK, NOW - 250, NOW) is None  # after the round before: none
    assert lookup(conn, PHONE, HELPDESK, NOW - 800, NOW - 650) is None  # the window is the mail's time
    assert lookup(conn, PHONE, "ewa@acme.example", None, NOW) is None
    assert loopguard.looping(conn, PHONE, HELPDESK, "Ticket #3 received, we will answer soon", NOW)
    assert not loopguard.looping(conn, PHONE, HELPDESK, "Thank you, closed", NOW)

    instructions, _ = vm_steps(conn, lambda: lookup(conn, PHONE, HELPDESK, None, NOW), every=1)
    assert instructions < 300, instructions  # through the address's answer mails: 21,000
    sql = loopguard._ANSWER_BETWEEN
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?"))]
    assert plan == PLAN, plan


def test_a_new_database(tmp_path: Path) -> None:
    db = Db.open(tmp_path / "smsgw.db")
    try:
        fill(db.conn)
        check(db.conn)
    finally:
        db.close()


def test_a_database_upgraded_from_0_2_40(tmp_path: Path) -> None:
    # Schema 75 (0.2.40), the rows written there; the next open runs migration 76 on them.
    path = tmp_path / "smsgw.db"
    Db.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        undo_migration_76(conn)
        conn.execute("UPDATE schema_version SET version = 75")
        fill(conn)
    finally:
        conn.close()
    db = Db.open(path)
    try:
        assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] >= 76
        check(db.conn)
    finally:
        db.close()
