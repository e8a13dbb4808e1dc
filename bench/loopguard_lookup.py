"""The cost of the loop guard's first lookup (`loopguard._answer_between`), which every mail answering
a conversation pays for each of its numbers: the latest answer mail from the phone to the sender
within `FAST_SECONDS` (ten minutes).

A database made by the migrations gets `--rows` outbox rows within the last ten minutes (a third
of them answer mails to `--users` addresses, each with its MO; the rest notices), and one answer
mail from the phone to the sender among them; the lookup is timed and counted in SQLite VM
instructions (its progress handler, one call per instruction), and its query plan printed.
`--shared`: every answer mail goes to the sender's address, one mailbox that all phones answer to
(a helpdesk), and the phone has `--history` older answers (one a day), as a phone in use has.

Usage: python bench/loopguard_lookup.py [--rows 30000] [--users 500] [--shared] [--history 90]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.conversations import loopguard  # noqa: E402
from gateway.store.db import Db  # noqa: E402
from tests.test_store import vm_steps  # noqa: E402

NOW = 1_800_000_000.0
PHONE = "+48601000001"
USER = "anna@acme.example"
QUIET = "+48601000002"  # answered nobody


def fill(conn: sqlite3.Connection, rows: int, users: int, shared: bool, history: int) -> None:
    rnd = random.Random(7)
    conn.execute("BEGIN")
    for i in range(rows):
        at = NOW - rnd.random() * loopguard.FAST_SECONDS
        rcpt = USER if shared else f"user{i % users}@acme.example"
        mo_ref = None
        if i % 3 == 0:
            phone = f"+4860{rnd.randrange(10**7):07d}"
            mo_ref = conn.execute(
                "INSERT INTO mo (link, source, destination, text, state, received_at)"
                " VALUES ('smpp', ?, '7355', 'Tak', 'done', ?)",
                (phone, at),
            ).lastrowid
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, mo_ref)"
            " VALUES (?, 'gw@gw.example', ?, ?, 'sent', ?, ?, ?)",
            ("reply" if mo_ref else "notify", rcpt, b"x" * 200, at, at, mo_ref),
        )
    for day in range(history if shared else 0):
        at = NOW - 86400 * (day + 1)
        old = conn.execute(
            "INSERT INTO mo (link, source, destination, text, state, received_at)"
            " VALUES ('smpp', ?, '7355', 'Tak', 'done', ?)",
            (PHONE, at),
        ).lastrowid
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, mo_ref)"
            " VALUES ('reply', 'gw@gw.example', ?, x'00', 'sent', ?, ?, ?)",
            (USER, at, at, old),
        )
    mo_ref = conn.execute(
        "INSERT INTO mo (link, source, destination, text, state, received_at)"
        " VALUES ('smpp', ?, '7355', 'Jadę, oddzwonię', 'done', ?)",
        (PHONE, NOW - 30),
    ).lastrowid
    conn.execute(
        "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, mo_ref)"
        " VALUES ('reply', 'gw@gw.example', ?, x'00', 'sent', ?, ?, ?)",
        (USER, NOW - 30, NOW - 30, mo_ref),
    )
    conn.execute("COMMIT")


def steps(conn: sqlite3.Connection, phone: str = PHONE) -> int:
    count, _ = vm_steps(conn, lambda: loopguard._answer_between(conn, phone, USER, None, NOW), every=1)
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--shared", action="store_true", help="all answer mails to the sender's address")
    parser.add_argument("--history", type=int, default=90, help="the phone's older answers, with --shared")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Db.open(Path(tmp) / "bench.db")
        conn = db.conn
        fill(conn, args.rows, args.users, args.shared, args.history)
        assert loopguard._answer_between(conn, PHONE, USER, None, NOW) == "Jadę, oddzwonię"
        rounds = 50
        start = time.perf_counter()
        for _ in range(rounds):
            loopguard._answer_between(conn, PHONE, USER, None, NOW)
        took = (time.perf_counter() - start) / rounds
        answers = (args.rows + 2) // 3
        to = f"{answers} of them answer mails to the sender" if args.shared else f"{args.users} addresses"
        print(
            f"{args.rows} outbox rows in {loopguard.FAST_SECONDS:g} s ({to}): {took * 1000:.2f} ms a lookup,"
        )
        print(f"  {steps(conn)} SQLite VM instructions")
        # Most mails: the phone sent no answer mail to the sender just before, and all are looked at.
        start = time.perf_counter()
        for _ in range(rounds):
            loopguard._answer_between(conn, QUIET, USER, None, NOW)
        took = (time.perf_counter() - start) / rounds
        print(f"  a phone with no answer mail: {took * 1000:.2f} ms, {steps(conn, QUIET)} instructions")
        sql = loopguard._ANSWER_BETWEEN if hasattr(loopguard, "_ANSWER_BETWEEN") else None
        if sql:
            plan = conn.execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")).fetchall()
            for row in plan:
                print("  plan:", row[-1])
        db.close()


if __name__ == "__main__":
    main()
