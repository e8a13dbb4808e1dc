"""`smsgw status` on mail deferred for the relay's faults while the relay takes mail again: when it
goes. It said "waits for its next try" (up to an hour away) although mail deferred for what a probe
sees goes once the relay answers a probe (`gateway.relayprobe`), and not "within 30 s" of it: the
probes go further apart after mail they woke failed again, which the database does not say. Real
database files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.cli.statusrelay import outbox_lines
from gateway.store.db import Store
from gateway.store.outboxhealth import outbox_health

DOWN = "SMTPConnectError('Error connecting to relay.example on port 25: Connection refused')"
SILENT = "SMTPReadTimeoutError('Timed out waiting for server response')"
LOGIN = "SMTPAuthenticationError(535, '5.7.8 Authentication credentials invalid')"
LOGIN_FAILING = "LoginFailingForNow(454, '4.7.0 Temporary authentication failure')"
BUSY = "SMTPSenderRefused(452, '4.5.3 Too many mails', 'smsgw@sms.example.com')"
OUR_SENDER = "SMTPSenderRefused(553, '5.7.1 Sender not owned by user', 'smsgw@sms.example.com')"


def status_lines(tmp_path: Path, error: str) -> str:
    """An hour-old mail deferred for `error`, and a mail the relay took a minute ago."""
    now = time.time()
    store = Store.open(tmp_path / "smsgw.db")
    try:
        conn = store.db.conn
        with store.db.transaction():
            conn.execute(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
                " created_at, last_error) VALUES ('reply', '', 'u@acme.example', x'', 'queued', 9, ?, ?, ?)",
                (now + 1800, now - 3600, error),
            )
            conn.execute(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at,"
                " sent_at) VALUES ('notice', '', 'x@example.com', x'', 'sent', 0, ?, ?)",
                (now - 90, now - 60),
            )
        health = outbox_health(conn, now)
    finally:
        store.close()
    assert health.relay_ok and health.stuck_for(now) is None  # the relay takes mail: no trouble
    return "\n".join(outbox_lines(health, now))


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (DOWN, "the relay was unreachable for some mail, which goes after the relay answers a probe"),
        (SILENT, "(timeout), which goes after the relay answers a probe (every 30 s, less often after"),
        (LOGIN, "(login refused), which goes once a probe of the relay gets through"),
        (LOGIN_FAILING, "(login failing for now), which goes once the relay's authentication works again"),
        (BUSY, "(busy), which goes as soon as the relay takes a mail"),
        (OUR_SENDER, "(our sender refused), which waits for its next try"),
    ],
    ids=["unreachable", "timeout", "login-refused", "login-failing", "busy", "our-sender-refused"],
)
def test_status_says_when_mail_deferred_for_the_relay_goes(tmp_path: Path, error: str, said: str) -> None:
    lines = status_lines(tmp_path, error)
    assert said in lines, lines
