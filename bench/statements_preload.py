"""bench/statements.py's `--history` and `--backlog`: the account's past and waiting mail, written first.

Rows go in by direct SQL in big transactions (no journal sync, no foreign-key checks) before the
daemon opens the file, so that a run can show which statements cost more as the tables grow; the
store creates and migrates the file first, so the rows fit the schema the daemon expects.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from gateway.adminrules import seed_accounts
from gateway.config import load_config
from gateway.store.db import Store

EMAIL = (
    "INSERT INTO emails (id, account_id, user_id, mail_from, client_ip, header_message_id, subject, text,"
    " received_at) VALUES (?,?,?,?,?,?,?,?,?)"
)


MESSAGE = (
    "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total, state,"
    " created_at, expires_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


PART = (
    "INSERT INTO parts (id, message_id, seq, state, attempts, next_attempt_at, expires_at, destination,"
    " source, data_coding, payload, udh, text, link, smsc_id, submitted_at, done_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def preload(db: Path, cfg_path: Path, history: int, backlog: int) -> None:
    """`history` finished messages of the bench account and `backlog` waiting ones, by direct SQL in
    big transactions, before the daemon opens the file (the store creates and migrates it first)."""
    cfg = load_config(cfg_path)
    store = Store.open(db)
    seed_accounts(store, cfg)
    account = store.accounts.get_account("bench").id
    user = store.db.conn.execute("SELECT id, email FROM users WHERE account_id = ?", (account,)).fetchone()
    store.close()
    rnd = random.Random(1)
    now = time.time()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    (email0,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM emails").fetchone()
    (message0,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
    (part0,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM parts").fetchone()
    text = "History message. The meeting is moved to 10:00, room 4."
    span = 6 * 86400.0  # inside the retention: the purge must not delete it during the run
    chunk = 50_000
    t0 = time.perf_counter()
    for start in range(0, history, chunk):
        emails, messages, parts, dlrs, outbox, convs, mos = [], [], [], [], [], [], []
        for i in range(start, min(history, start + chunk)):
            at = now - span + span * i / max(history, 1)
            eid, mid, pid = email0 + i + 1, message0 + i + 1, part0 + i + 1
            r = rnd.random()
            state = "delivered" if r < 0.90 else "failed" if r < 0.97 else "expired"
            phone = f"+4869{i % 1_000_000:07d}"
            emails.append(
                (eid, account, user[0], user[1], "127.0.0.1", f"<h{i}@acme.example>", f"H {i}", text, at)
            )
            messages.append(
                (mid, eid, account, phone, "+48100200300", text, 0, 1, state, at, at + 86400, at + 5)
            )
            smsc_id = f"hist-{i}" if state != "expired" else None
            parts.append(
                (pid, mid, 1, state, 1, at, at + 86400, phone, "+48100200300", 0, text.encode(), b"", text,
                 "sim" if smsc_id else None, smsc_id, at + 1 if smsc_id else None, at + 5)
            )  # fmt: skip
            if smsc_id:
                dlrs.append(("sim", smsc_id, "DELIVRD" if state == "delivered" else "UNDELIV", pid, at + 5))
            if state != "delivered":
                outbox.append(("dsn", "<>", user[1], b"bounce", "sent", 1, at + 6, mid, at + 6, at + 7))
            if i % 5 == 0:
                convs.append((phone, "+48100200300", user[1], account, "sms.example.com", text, at, at))
            if i % 50 == 0:
                mos.append(("sim", phone, "+48100200300", "ok", "mailed", at + 60, at + 60, account))
        with conn:
            conn.execute("BEGIN")
            conn.executemany(EMAIL, emails)
            conn.executemany(MESSAGE, messages)
            conn.executemany(PART, parts)
            conn.executemany(
                "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at) VALUES (?,?,?,?,?)", dlrs
            )
            conn.executemany(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
                " message_ref, created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                outbox,
            )
            conn.executemany(
                "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
                " last_mt_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                convs,
            )
            conn.executemany(
                "INSERT INTO mo (link, source, destination, text, state, received_at, acked_at, account_id)"
                " VALUES (?,?,?,?,?,?,?,?)",
                mos,
            )
            conn.execute("COMMIT")
    # The backlog: the account's campaign, waiting a month (deferred), so that no link sends it.
    base = email0 + history
    for start in range(0, backlog, chunk):
        emails, messages, parts = [], [], []
        for i in range(start, min(backlog, start + chunk)):
            eid, mid, pid = base + i + 1, message0 + history + i + 1, part0 + history + i + 1
            phone = f"+4868{i % 1_000_000:07d}"
            emails.append(
                (eid, account, user[0], user[1], "127.0.0.1", f"<b{i}@acme.example>", f"B {i}", text, now)
            )
            messages.append(
                (mid, eid, account, phone, "+48100200300", text, 0, 1, "queued", now, now + 60 * 86400, None)
            )
            parts.append(
                (pid, mid, 1, "deferred", 0, now + 30 * 86400, now + 60 * 86400, phone, "+48100200300", 0,
                 text.encode(), b"", text, None, None, None, None)
            )  # fmt: skip
        with conn:
            conn.execute("BEGIN")
            conn.executemany(EMAIL, emails)
            conn.executemany(MESSAGE, messages)
            conn.executemany(PART, parts)
            conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    took = time.perf_counter() - t0
    print(f"preloaded {history} finished and {backlog} waiting messages of account bench in {took:.1f} s")
