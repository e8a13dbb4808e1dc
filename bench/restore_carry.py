"""Restore carry benchmark: what `smsgw restore` takes over from the database it replaces, timed.

Builds a replaced database of `--mo` answers (MOs) with a sent reply mail each, a tenth as many
conversations and premium SMS, and a backup of it without its last `--later` answers (their mails
still queued) and of its last `--mails` mails (each an SMS sent and delivered, with its receipt),
then runs the carry `smsgw restore` runs on the backup's copy and prints how long it took and what it
said. The carry reads every MO, conversation and premium SMS of both, the mails not sent, and copies
every mail accepted after the backup whole: it runs once, with the daemon stopped.

Usage: python bench/restore_carry.py [--mo 1000000] [--later 1000] [--mails 10000]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import restorecarries  # noqa: E402
from gateway.store.freshscript import STATEMENTS, VERSION  # noqa: E402


def build(path: Path, mos: int) -> None:
    conn = sqlite3.connect(path)
    for statement in STATEMENTS:
        conn.execute(statement)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is None:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (VERSION,))
    conn.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'acme', 1)")
    conn.execute(
        "INSERT INTO emails (id, mail_from, text, received_at) VALUES (1, 'anna@acme.example', 'x', 1)"
    )
    conn.executemany(
        "INSERT INTO mo (id, link, source, destination, text, state, received_at, account_id)"
        " VALUES (?, 'main', ?, '+48100200300', 'Yes, at 10', 'mailed', ?, 1)",
        ((i, f"+4860{i % 100_000:07d}", i) for i in range(1, mos + 1)),
    )
    conn.executemany(
        "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, mo_ref)"
        " VALUES ('reply', '', 'anna@acme.example', x'00', 'sent', ?, ?, ?)",
        ((i, i, i) for i in range(1, mos + 1)),
    )
    conn.executemany(
        "INSERT INTO conversations (id, phone, number, user_email, account_id, domain, text, started_at,"
        " last_mt_at) VALUES (?, ?, '+48100200300', 'anna@acme.example', 1, 'sms.example', 't', ?, ?)",
        ((i, f"+4860{i:07d}", i, i) for i in range(1, mos // 10 + 1)),
    )
    conn.executemany(
        "INSERT INTO premium_mo (id, mo_id, number, phone, parts, price, commission, text, state,"
        " received_at) VALUES (?, ?, '7100', '+48601000001', 1, 100, 10, 'x', 'mailed', ?)",
        ((i, i, i) for i in range(1, mos // 10 + 1)),
    )
    conn.commit()
    conn.close()


def add_mails(path: Path, mails: int) -> None:
    """`mails` mails after the first, each with one SMS to a phone, sent and delivered, and its receipt."""
    conn = sqlite3.connect(path)
    ids = range(2, mails + 2)
    conn.executemany(
        "INSERT INTO emails (id, account_id, mail_from, text, received_at, dedup_key)"
        " VALUES (?, 1, 'anna@acme.example', 'x', ?, ?)",
        ((i, i, f"<{i}@acme.example>") for i in ids),
    )
    conn.executemany(
        "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total,"
        " state, created_at, expires_at, finished_at, dedup_key)"
        " VALUES (?, ?, 1, ?, 'GW', 'x', 0, 1, 'delivered', ?, 9e9, ?, ?)",
        ((i, i, f"+4860{i % 100_000:07d}", i, i, f"<{i}@acme.example>") for i in ids),
    )
    conn.executemany(
        "INSERT INTO parts (id, message_id, seq, state, attempts, next_attempt_at, expires_at, destination,"
        " source, data_coding, payload, udh, text, link, smsc_id, submitted_at, done_at)"
        " VALUES (?, ?, 1, 'delivered', 1, ?, 9e9, ?, 'GW', 0, x'78', x'', 'x', 'main', ?, ?, ?)",
        ((i, i, i, f"+4860{i % 100_000:07d}", f"S{i}", i, i) for i in ids),
    )
    conn.executemany(
        "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at) VALUES ('main', ?, 'DELIVRD', ?, ?)",
        ((f"S{i}", i, i) for i in ids),
    )
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mo", type=int, default=1_000_000)
    parser.add_argument("--later", type=int, default=1000)
    parser.add_argument("--mails", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restore-carry-") as tmp:
        replaced, copy = Path(tmp) / "replaced.db", Path(tmp) / "copy.db"
        build(replaced, args.mo)
        shutil.copy(replaced, copy)
        with sqlite3.connect(copy) as conn:  # the backup: taken before the last answers came
            conn.execute("DELETE FROM mo WHERE id > ?", (args.mo - args.later,))
            conn.execute("DELETE FROM outbox WHERE mo_ref > ?", (args.mo - args.later,))
        add_mails(replaced, args.mails)  # and before the last mails
        with sqlite3.connect(replaced) as conn:  # their mails not sent yet
            conn.execute("UPDATE outbox SET state = 'queued' WHERE mo_ref > ?", (args.mo - args.later,))
        conn = sqlite3.connect(copy, isolation_level=None)
        started = time.perf_counter()
        carried = restorecarries.carry(conn, replaced)
        took = time.perf_counter() - started
        conn.close()
        size = replaced.stat().st_size / 1e6
        print(
            f"{args.mo} MOs and mails, {args.mo // 10} conversations and votes, {args.mails} mails sent"
            f" since the backup ({size:.0f} MB): {took:.2f} s"
        )
        print(carried if isinstance(carried, str) else carried.said())


if __name__ == "__main__":
    main()
