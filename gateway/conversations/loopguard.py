"""A mail loop between a phone's auto-reply app and an automatic mailbox that marks nothing as
automatic (a helpdesk acknowledging every mail without Auto-Submitted, X-Loop or Precedence): each
answer mail draws a mail back within seconds, which is an SMS to the phone, which answers again. It
was bounded only by the hourly limit of answer mails a phone (30 an hour: 30 SMS).

A mail to a phone is refused as a loop when it and each of the `ROUNDS` SMS before it from the same
sender to that phone came within `FAST_SECONDS` after an answer mail from the phone to that sender,
each after an answer of its own (one that came after the round before it), all within `SPAN_SECONDS`,
with the same text once the words holding a digit (ticket numbers, times, hex ids) are set aside.
A person answering within a minute three times in a row is plausible; writing the same words each
time, digits aside, is not: so the text's sameness is what tells a program. A person's quick
follow-ups after one answer ("Gate 3", "Gate 4", ...) are alike too, but they answer nothing new.
Mail marked automatic never gets here (`gateway.smtp.automail`).

The text compared is the SMS as planned (GSM mapping, transliteration, truncation), as `messages.text`
keeps it: a mail's own text with a typographic apostrophe or a dash never equalled its stored SMS.
"""

from __future__ import annotations

import re
import sqlite3

FAST_SECONDS = 60.0  # an automatic mailbox answers within seconds; a person reads first
ROUNDS = 3  # rounds before this one, each fast and alike
SPAN_SECONDS = 600.0  # all of them within ten minutes
# A word with a digit in it: a ticket number, a time, a hex id ("a3f9c1"), with its punctuation.
_DIGITS = re.compile(r"\S*\d\S*")

REFUSAL = (
    "550 5.7.1 Not sent: a mail loop with {phone}: the last {rounds} mails from you to this phone came"
    " within {fast:g} s of its answer mail, with the same text; an automatic mailbox answering the"
    " phone's auto-reply app (mark its mail Auto-Submitted: auto-replied, RFC 3834, or stop the"
    " phone's auto-reply)"
)


def shape(text: str) -> str:
    """The text with its words holding a digit set aside and its spacing and case evened out."""
    return " ".join(_DIGITS.sub("#", text).casefold().split())


def _answered_between(
    conn: sqlite3.Connection, phone: str, user: str, after: float | None, at: float
) -> bool:
    """Whether an answer mail from `phone` to `user` was queued within FAST_SECONDS before `at` and
    after `after` (the round before, if any): each round answers an answer of its own."""
    since = at - FAST_SECONDS if after is None else max(at - FAST_SECONDS, after)
    row = conn.execute(
        "SELECT 1 FROM outbox o JOIN mo m ON m.id = o.mo_ref"
        " WHERE o.state IN ('queued', 'active', 'sent') AND o.created_at >= ? AND o.created_at <= ?"
        " AND (? IS NULL OR o.created_at > ?)"
        " AND o.kind = 'reply' AND o.rcpt = ? COLLATE NOCASE AND m.source = ? LIMIT 1",
        (since, at, after, after, user, phone),
    ).fetchone()
    return row is not None


def looping(conn: sqlite3.Connection, phone: str, user: str, text: str, now: float) -> bool:
    """Whether a mail from `user` to `phone` whose SMS is `text` (as planned), now, is the next round
    of a loop."""
    if not _answered_between(conn, phone, user, None, now):  # most mails: no answer just before
        return False
    # The rounds, newest first, and the one before the oldest: it bounds when that one's answer came.
    rows = conn.execute(
        "SELECT m.created_at, m.text FROM messages m JOIN emails e ON e.id = m.email_id"
        " WHERE m.recipient = ? AND m.created_at >= ? AND e.mail_from = ? COLLATE NOCASE"
        " ORDER BY m.created_at DESC LIMIT ?",
        (phone, now - SPAN_SECONDS - FAST_SECONDS, user, ROUNDS + 1),
    ).fetchall()
    rounds = [(at, t) for at, t in rows[:ROUNDS] if at >= now - SPAN_SECONDS]
    if len(rounds) < ROUNDS:
        return False
    alike = shape(text)
    if any(shape(t) != alike for _at, t in rounds):
        return False
    times = [now, *(at for at, _t in rows)]
    return all(
        _answered_between(conn, phone, user, times[i + 1] if i + 1 < len(times) else None, times[i])
        for i in range(ROUNDS + 1)
    )
