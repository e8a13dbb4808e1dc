"""What one forged bounce costs the event loop: `gateway.answerbounce.find` of a DSN that quotes an
answer-form Message-ID (`<….sms-reply@host>`) no answer mail has, with `--mails` answer mails sent
over the last 10 days (its look-back), each as `forwarded.sms_reply` writes it with a quoted SMS.

A store in a temporary directory; the time is the median of `--runs` calls, and SQLite's VM
instructions of one call are counted by its progress handler. Run it on a tree before migration 72
(the answer mails' Message-ID column) to see the scan it replaced.

Usage: python bench/answer_bounce.py [--mails 50000] [--runs 20]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gateway.conversations.replymail  # noqa: E402, F401  (its answer kinds' refusal handler)
from gateway import answerbounce, forwarded  # noqa: E402
from gateway.store.db import Store  # noqa: E402

USER = "anna@acme.example"
FORGED = (
    "From: MAILER-DAEMON@mx.example\r\nTo: smsgw@sms.example.com\r\nSubject: Undelivered Mail\r\n"
    "Message-ID: <forged@mx.example>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
    f"Final-Recipient: rfc822; {USER}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
    "Message-ID: <179664570906.10120.9428259315347629807.sms-reply@sms.example.com>\r\n\r\nx\r\n--b--\r\n"
).encode()


def answer_mail() -> bytes:
    return forwarded.sms_reply(
        phone="+48601222222",
        phone_display="+48 601 222 222",
        domain="sms.example.com",
        rcpt=USER,
        subject="Spotkanie w czwartek",
        text="Tak, będę o 10:00, ale proszę o potwierdzenie adresu. " * 3,
        quoted="Czy możemy się spotkać w czwartek o 10:00 w biurze na Mokotowie? " * 4,
        quoted_at=datetime.now(UTC),
        in_reply_to="<r1@acme.example>",
    )


def fill(store: Store, mails: int) -> None:
    """`mails` answer mails sent over the last 10 days, one a MO, each with an id of its own where
    the outbox keeps one."""
    conn, now = store.db.conn, store.clock()
    cols = {r[1] for r in conn.execute("PRAGMA table_info(outbox)")}
    own = ", header_message_id" if "header_message_id" in cols else ""
    own_value = ", printf('<%d.1.sms-reply@sms.example.com>', n.i)" if own else ""
    with conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at,"
            f" sent_at, mo_ref{own}) SELECT 'reply', 'smsgw@sms.example.com', ?, ?, 'sent', ?1 + 0,"
            f" ?4 - n.i * ?5, ?4 - n.i * ?5, n.i{own_value} FROM n",
            (mails, USER, answer_mail(), now, 10 * 86400 / (mails + 1)),
        )


def measure(mails: int, runs: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as directory:
        store = Store.open(Path(directory) / "db.sqlite")
        fill(store, mails)
        size = store.db.conn.execute("SELECT SUM(length(content)) FROM outbox").fetchone()[0]
        assert answerbounce.find(store, FORGED) is None  # prepared, pages in memory
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            answerbounce.find(store, FORGED)
            times.append(time.perf_counter() - start)
        count = [0]

        def tick() -> int:
            count[0] += 1
            return 0

        store.db.conn.set_progress_handler(tick, 1)
        answerbounce.find(store, FORGED)
        store.db.conn.set_progress_handler(None, 0)
        store.close()
        return statistics.median(times), count[0], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    seconds, steps, size = measure(args.mails, args.runs)
    print(
        f"{args.mails} answer mails ({size / 1e6:.1f} MB) in 10 days: a forged bounce's lookup"
        f" {seconds * 1000:.3f} ms (median of {args.runs}), {steps} VM instructions"
    )


if __name__ == "__main__":
    main()
