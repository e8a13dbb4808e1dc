"""The loop guard's lookup of a phone's latest answer mail to a sender, asked before every mail that
answers a conversation, reads that sender's answer mails alone.

With its window at ten minutes it read every outbox row of those ten minutes through the age index
and sorted the ones it kept: 52 ms with 30,000 rows (bench/loopguard_lookup.py). Counted here in
SQLite VM instructions (no clock): 3,000 rows of other mails cost some 20,000; the index of answer
mails by address (migration 75) leaves a few dozen, whatever the rows of others. Real SQLite files,
made fresh and upgraded from schema 74.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.conversations import loopguard
from gateway.store import migrate
from gateway.store.db import Db
from gateway.store.schema import MIGRATIONS
from tests.test_fresh_schema import migrated_up_to
from tests.test_store import vm_steps

NOW = 1_800_000_000.0
PHONE = "+48601000001"
USER = "anna@acme.example"


def add(conn: sqlite3.Connection, kind: str, rcpt: str, at: float, source: str, state: str = "sent") -> None:
    mo = conn.execute(
        "INSERT INTO mo (link, source, destination, text, state, received_at)"
        " VALUES ('l', ?, '7355', ?, 'done', ?)",
        (source, f"{kind} {source} {at:g}", at),
    ).lastrowid
    conn.execute(
        "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, mo_ref)"
        " VALUES (?, 'gw@gw.example', ?, x'00', ?, ?, ?, ?)",
        (kind, rcpt, state, at, at, mo),
    )


def fill(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    for i in range(3000):  # others' mails of the last ten minutes
        at = NOW - 1 - (i % 590)
        add(conn, "reply" if i % 3 else "notify", f"user{i % 97}@acme.example", at, f"+4860{i:07d}")
    add(conn, "reply", USER, NOW - 700, PHONE)  # before the window
    add(conn, "reply", "ANNA@acme.example", NOW - 300, PHONE)  # the one
    add(conn, "reply", USER, NOW - 200, "+48601000002")  # another phone's
    add(conn, "notify", USER, NOW - 150, PHONE)  # no answer mail
    add(conn, "reply", USER, NOW - 100, PHONE, state="failed")  # never reached the sender
    conn.execute("COMMIT")


def check(conn: sqlite3.Connection) -> None:
    fill(conn)
    assert loopguard._answer_between(conn, PHONE, USER, None, NOW) == f"reply {PHONE} {NOW - 300:g}"
    assert loopguard._answer_between(conn, PHONE, USER, NOW - 250, NOW) is None  # after the round before
    assert loopguard._answer_between(conn, PHONE, "ewa@acme.example", None, NOW) is None
    instructions, _ = vm_steps(conn, lambda: loopguard._answer_between(conn, PHONE, USER, None, NOW), every=1)
    assert instructions < 200


def test_a_new_database(tmp_path: Path) -> None:
    db = Db.open(tmp_path / "smsgw.db")
    try:
        check(db.conn)
    finally:
        db.close()


def test_a_database_upgraded_from_schema_74() -> None:
    with closing(migrated_up_to(74)) as conn:
        for number, migration in enumerate(MIGRATIONS[74:], start=75):
            for statement in migrate._split_sql(migration):
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (number,))
        check(conn)
