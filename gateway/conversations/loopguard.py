"""A mail loop between a phone's auto-reply app and an automatic mailbox that marks nothing as
automatic (a helpdesk acknowledging every mail without Auto-Submitted, X-Loop or Precedence): each
answer mail draws a mail back within seconds, which is an SMS to the phone, which answers again. It
was bounded only by the hourly limit of answer mails a phone (30 an hour: 30 SMS).

A mail to a phone is refused as a loop when it and each of the `ROUNDS` SMS before it from the same
sender to that phone came within `FAST_SECONDS` after an answer mail from the phone to that sender,
all within `SPAN_SECONDS`, with the same text once digits (ticket numbers, times) are set aside.
A person answering within a minute three times in a row is plausible; writing the same words each
time, digits aside, is not: so the text's sameness is what tells a program. Mail marked automatic
never gets here (`gateway.smtp.automail`).
"""

from __future__ import annotations

import re
import sqlite3

FAST_SECONDS = 60.0  # an automatic mailbox answers within seconds; a person reads first
ROUNDS = 3  # rounds before this one, each fast and alike
SPAN_SECONDS = 600.0  # all of them within ten minutes
_DIGITS = re.compile(r"\d+")

REFUSAL = (
    "550 5.7.1 Not sent: a mail loop with {phone}: the last {rounds} mails from you to this phone came"
    " within {fast:g} s of its answer mail, with the same text; an automatic mailbox answering the"
    " phone's auto-reply app (mark its mail Auto-Submitted: auto-replied, RFC 3834, or stop the"
    " phone's auto-reply)"
)


def shape(text: str) -> str:
    """The text with its digits set aside and its spacing and case evened out."""
    return " ".join(_DIGITS.sub("#", text).casefold().split())


def _answered_before(conn: sqlite3.Connection, phone: str, user: str, at: float) -> bool:
    """Whether an answer mail from `phone` to `user` was queued within FAST_SECONDS before `at`."""
    row = conn.execute(
        "SELECT 1 FROM outbox o JOIN mo m ON m.id = o.mo_ref"
        " WHERE o.state IN ('queued', 'active', 'sent') AND o.created_at BETWEEN ? AND ?"
        " AND o.kind = 'reply' AND o.rcpt = ? COLLATE NOCASE AND m.source = ? LIMIT 1",
        (at - FAST_SECONDS, at, user, phone),
    ).fetchone()
    return row is not None


def looping(conn: sqlite3.Connection, phone: str, user: str, text: str, now: float) -> bool:
    """Whether a mail from `user` to `phone` with this SMS `text`, now, is the next round of a loop."""
    if not _answered_before(conn, phone, user, now):
        return False
    rows = conn.execute(
        "SELECT m.created_at, m.text FROM messages m JOIN emails e ON e.id = m.email_id"
        " WHERE m.recipient = ? AND m.created_at >= ? AND e.mail_from = ? COLLATE NOCASE"
        " ORDER BY m.created_at DESC LIMIT ?",
        (phone, now - SPAN_SECONDS, user, ROUNDS),
    ).fetchall()
    if len(rows) < ROUNDS:
        return False
    alike = shape(text)
    return all(shape(t) == alike and _answered_before(conn, phone, user, at) for at, t in rows)
