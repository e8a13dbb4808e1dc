"""Whether the outbox's mail is getting out: the figures `smsgw status`, the operator's dashboard and
`/metrics` judge the relay by.

Bounces, notices and every phone's answer leave only through the relay. With the relay down for a
day, status exited 0, /healthz said ok and the dashboard "Nothing." needing attention, while
thousands of answers waited: a monitoring check that reads the exit code never fired. Mail waiting
longer than `STUCK_SECONDS` is trouble, unless the relay is taking other mail meanwhile, or has
taken some since and defers only certain recipients (greylisting, a full mailbox): one such mail
kept `smsgw status` failing for the five days of its retries, hiding any real trouble behind it.
The relay's last answer says why.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.store.outbox import relay_reply

# A relay that has taken no mail for this long is down or refusing us (greylisting lets a mail
# through within minutes; the back-off tries 30 s, 1, 2, 4, 8 and 16 min apart by then).
STUCK_SECONDS = 1800.0
DAY = 86400.0


# Mail given up on since a time, by when it was (`sent_at`, set by finish_mail for every final
# state): counted by when it was queued, a mail failed after days of retries was left out, and a
# relay down for five days vanished from view once all its mail had failed. Read off migration 37's
# partial index, whose predicate the count repeats (SQLite takes it only then).
FAILED_SINCE = "SELECT COUNT(*) FROM outbox WHERE state = 'failed' AND sent_at >= ?"


@dataclass(frozen=True)
class OutboxHealth:
    waiting: int  # queued or being sent
    oldest: float | None  # when the oldest of them was queued
    last_error: str | None  # the relay's answer to the mail deferred last
    failed_day: int  # mails given up on in the last 24 hours
    relay_ok: bool  # it took mail within STUCK_SECONDS, or defers only some recipients
    relay_fault: bool = (
        False  # the last answer is the relay's own failure (unreachable, 421), not a recipient's
    )

    def stuck_for(self, now: float) -> float | None:
        """How long the oldest mail has waited, once that is past STUCK_SECONDS and the relay is
        not taking mail (see the module's docstring)."""
        if self.oldest is None or now - self.oldest <= STUCK_SECONDS or self.relay_ok:
            return None
        return now - self.oldest

    @property
    def said(self) -> str | None:
        """The relay's last answer as an SMTP reply reads, not as Python wrote its exception."""
        return relay_reply(self.last_error)[1] if self.last_error else None


def outbox_health(conn: sqlite3.Connection, now: float) -> OutboxHealth:
    """A few index reads (outbox_due, outbox_age, outbox_failed): also on a large outbox of a relay
    down for days."""
    waiting, oldest = conn.execute(
        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state IN ('queued', 'active')"
    ).fetchone()
    # The deferred mail due last was deferred last: its error is the relay's latest word.
    row = conn.execute(
        "SELECT last_error FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
        " ORDER BY next_attempt_at DESC LIMIT 1"
    ).fetchone()
    (failed,) = conn.execute(FAILED_SINCE, (now - DAY,)).fetchone()
    (last_sent,) = conn.execute(
        "SELECT MAX(sent_at) FROM outbox WHERE state = 'sent' AND created_at >= ?", (now - DAY,)
    ).fetchone()
    # A refusal of the recipient (aiosmtplib's SMTPRecipientsRefused: 450 greylisted, 452 mailbox
    # full) is the recipient's matter; anything else (no connection, 421, a TLS or login failure,
    # no answer to the mail) is the relay's.
    relays_fault = conn.execute(
        "SELECT last_error FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
        " AND last_error NOT LIKE 'SMTPRecipientsRefused%' ORDER BY next_attempt_at DESC LIMIT 1"
    ).fetchone()
    # Recipients' refusals excuse the relay only while it takes other mail: one that refuses every
    # RCPT (554 relay access denied, 421 shutting down, 451 a broken lookup) has taken nothing since.
    took_since = last_sent is not None and oldest is not None and last_sent >= oldest
    relay_ok = (last_sent is not None and last_sent >= now - STUCK_SECONDS) or (
        relays_fault is None and took_since
    )
    # The relay's own fault speaks first: a recipient greylisted for hours is retried last.
    said = relays_fault[0] if relays_fault else (row[0] if row else None)
    # Worded by its kind: "the relay defers some recipients" with "Connection refused" beside it
    # contradicted itself after an outage (those mails wait out their back-off).
    return OutboxHealth(int(waiting), oldest, said, int(failed), relay_ok, relays_fault is not None)
