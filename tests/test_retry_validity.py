"""A retry gives an SMS its account's validity from when it goes, however often it is retried.

The new end was the row's last end less its acceptance: after one retry that span included the days
the SMS waited, so a 24-hour SMS retried on day 10 and again on day 40 was kept trying for 11 days
the second time (past the 720 hours the config allows, with enough retries). A real SQLite file, the
store's own retry, an injected clock."""

from __future__ import annotations

from pathlib import Path

from billing_reports import mtlate
from gateway.store.db import Store

DAY = 86400.0
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_each_retry_gives_the_accounts_validity_from_when_it_goes(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "smsgw.db", clock=clock)
    try:
        acme = store.accounts.add_account("acme")
        conn = store.db.conn
        with store.db.transaction():
            email = conn.execute(
                "INSERT INTO emails (account_id, mail_from, text, received_at)"
                " VALUES (?, 'a@acme.example', 'x', ?)",
                (acme.id, T0),
            ).lastrowid
            message = conn.execute(
                "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
                " state, created_at, expires_at)"
                " VALUES (?, ?, '+48601000001', '+48100200300', 'x', 0, 1, 'failed', ?, ?)",
                (email, acme.id, T0, T0 + DAY),
            ).lastrowid
            conn.execute(
                "INSERT INTO parts (message_id, seq, state, next_attempt_at, expires_at, destination, source,"
                " data_coding, payload, udh, text)"
                " VALUES (?, 1, 'failed', ?, ?, '+48601000001', '+48100200300', 0, x'', x'', 'x')",
                (message, T0, T0 + DAY),
            )
        for day in (10, 40):
            clock.now = T0 + day * DAY
            assert (
                store.admin.retry_message(message, before_reset=mtlate.retried, default_validity_hours=24)
                == 1
            )
            ends = conn.execute(
                "SELECT m.expires_at, p.expires_at FROM messages m JOIN parts p ON p.message_id = m.id"
            ).fetchone()
            assert ends == (clock.now + DAY, clock.now + DAY), (day, [(e - clock.now) / 3600 for e in ends])
            with store.db.transaction():
                conn.execute("UPDATE parts SET state = 'failed'")
                conn.execute("UPDATE messages SET state = 'failed', finished_at = ?", (clock.now,))
    finally:
        store.close()
