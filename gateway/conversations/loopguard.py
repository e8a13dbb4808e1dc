"""A mail loop between a phone's auto-reply app and an automatic mailbox that marks nothing as
automatic (a helpdesk acknowledging every mail without Auto-Submitted, X-Loop or Precedence): each
answer mail draws a mail back within seconds, which is an SMS to the phone, which answers again. It
was bounded only by the hourly limit of answer mails a phone (30 an hour: 30 SMS).

A mail to a phone is refused as a loop when it and each of the `ROUNDS` SMS before it from the same
sender to that phone came within `FAST_SECONDS` after an answer mail from the phone to that sender,
each after an answer of its own (one that came after the round before it), all within `SPAN_SECONDS`,
with the same text once the words holding a digit (ticket numbers, times, hex ids) are set aside, and
the phone's answers that drew them the same text too (digits aside), each sent within
`PHONE_FAST_SECONDS` of the SMS it answers reaching the phone.
Helpdesks that fetch their mail by polling (Jira Service Management and Zammad each minute, OTRS every
few minutes) acknowledge minutes after the answer mail, not seconds: a minute's window let such a loop
run at the pace of the poll, bounded only by the hourly limit. So the window is ten minutes, and what
tells a loop from a conversation is that both sides repeat themselves: a phone's auto-reply app sends
the same words each time, and so does the mailbox's template. A person's quick follow-ups after one
answer ("Gate 3", "Gate 4", ...) are alike, but they answer nothing new; a person's "OK" to each of the
phone's answers is alike, but those answers are not.
Alike on both sides was not enough: an on-call person answering "ack" a few minutes after each
monitoring alert (one host's after another's, alike once the digits are set aside), or a driver's "OK"
to each of a dispatcher's job mails, had the fifth alert refused, the dispatcher's fourth job too. A
loop runs at machine speed on the phone's side: an auto-reply app answers as the SMS arrives, a person
when they read it. So each answer that drew a round must have come within a minute of the SMS it
answers (its last part's submit, or its delivery report when that came before the answer), as far as
the MO records which SMS it answers (`mo.answered_message_id`; one that does not counts as fast).
Mail marked automatic never gets here (`gateway.smtp.automail`), but mail marked auto-generated that
an account has sent as SMS (`--auto-generated send`) does: a helpdesk may mark its acknowledgements so.

The text compared is the SMS as planned (GSM mapping, transliteration, truncation), as `messages.text`
keeps it: a mail's own text with a typographic apostrophe or a dash never equalled its stored SMS.
"""

from __future__ import annotations

import re
import sqlite3

FAST_SECONDS = 600.0  # a polling helpdesk answers by its next poll: every minute to every few minutes
ROUNDS = 3  # rounds before this one, each fast and alike, each drawn by an alike answer
SPAN_SECONDS = 3600.0  # all of them within the hour
# An auto-reply app answers within seconds of the SMS reaching the phone; a person reading it, later.
PHONE_FAST_SECONDS = 60.0
# A word with a digit in it: a ticket number, a time, a hex id ("a3f9c1"), with its punctuation.
_DIGITS = re.compile(r"\S*\d\S*")


def shape(text: str) -> str:
    """The text with its words holding a digit set aside and its spacing and case evened out."""
    return " ".join(_DIGITS.sub("#", text).casefold().split())


# An answer mail is queued in the write that stores its MO, or, for an MO that waited for the answer
# to the submit of the SMS it answers, up to `waiting.wait_seconds` later (6 minutes by default): an
# hour before the window reaches back past every such wait of a running gateway. Only an MO that waited
# through a stop of the gateway longer than that is mailed later, at the start, and not looked at.
WAITED_SECONDS = 3600.0

# Started from the phone: its few MOs of the window (and of the waits before it), newest first, by the
# index of each phone's MOs by time (migration 76, `mo_phone_times`), then each one's answer mails by
# `outbox_mo_ref`. Started from the address (`outbox_replies`, migration 75, dropped by 77), the
# lookup read every answer mail to it of ten minutes, each with its MO: with one shared mailbox that
# every phone answers to (a helpdesk), 3,000 of them, some 21,000 SQLite instructions before each mail
# to a phone (bench/loopguard_lookup.py --shared). The order is named: SQLite would start from the address.
# `m.id > 0` (every MO) is the index's condition, which keeps other statements off it.
# Ties of time go to the later row, as the address's index (its rowid last) gave them.
_ANSWER_BETWEEN = (
    "SELECT m.text, m.received_at, m.answered_message_id"
    " FROM mo m INDEXED BY mo_phone_times CROSS JOIN outbox o INDEXED BY outbox_mo_ref"
    " WHERE m.source = ? AND m.received_at >= ? AND m.id > 0 AND o.mo_ref = m.id"
    " AND o.kind = 'reply' AND o.rcpt = ? COLLATE NOCASE AND o.created_at >= ? AND o.created_at <= ?"
    " AND (? IS NULL OR o.created_at > ?) AND o.state IN ('queued', 'active', 'sent')"
    " ORDER BY o.created_at DESC, o.id DESC LIMIT 1"
)


_ANY_MO = (
    "SELECT 1 FROM mo INDEXED BY mo_phone_times WHERE source = ? AND received_at >= ? AND id > 0 LIMIT 1"
)


def _answer_between(
    conn: sqlite3.Connection, phone: str, user: str, after: float | None, at: float
) -> str | None:
    """The text of the latest answer mail from `phone` to `user` queued within FAST_SECONDS before
    `at` and after `after` (the round before, if any): each round answers an answer of its own."""
    row = _answer_row(conn, phone, user, after, at)
    return None if row is None else row[0]


def _answer_row(
    conn: sqlite3.Connection, phone: str, user: str, after: float | None, at: float
) -> tuple[str, float, int | None] | None:
    """`_answer_between`'s answer: its text, when its MO was received, and the SMS it answers."""
    since = at - FAST_SECONDS if after is None else max(at - FAST_SECONDS, after)
    row = conn.execute(
        _ANSWER_BETWEEN, (phone, since - WAITED_SECONDS, user, since, at, after, after)
    ).fetchone()
    return None if row is None else (str(row[0]), float(row[1]), row[2])


def _at_once(conn: sqlite3.Connection, received: float, answered: int | None) -> bool:
    """Whether an MO received at `received` came within PHONE_FAST_SECONDS of the SMS it answers
    (`answered`, a `messages` row) reaching the phone: its last part's submit, or its delivery
    report where that came before the MO (an SMS that waited for a phone out of coverage). An MO
    that records no SMS counts as fast: alike answers were all the guard asked of it before."""
    if answered is None:
        return True
    row = conn.execute(
        "SELECT MAX(MAX(COALESCE(p.submitted_at, m.created_at), IIF(p.done_at <= ?, p.done_at, 0))),"
        " m.created_at FROM messages m LEFT JOIN parts p ON p.message_id = m.id WHERE m.id = ?",
        (received, answered),
    ).fetchone()
    reached = row[0] if row and row[0] is not None else (row[1] if row else None)
    return reached is None or received - float(reached) <= PHONE_FAST_SECONDS


def looping(conn: sqlite3.Connection, phone: str, user: str, text: str, now: float) -> bool:
    """Whether a mail from `user` to `phone` whose SMS is `text` (as planned), now, is the next round
    of a loop."""
    # Most phones sent nothing within the window and the waits before it: one seek of the phone's MOs
    # by time, without the join to answer mails and its sort, tells them apart.
    if conn.execute(_ANY_MO, (phone, now - FAST_SECONDS - WAITED_SECONDS)).fetchone() is None:
        return False
    if _answer_between(conn, phone, user, None, now) is None:  # most of the rest: no answer just before
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
    answers = [
        _answer_row(conn, phone, user, times[i + 1] if i + 1 < len(times) else None, times[i])
        for i in range(ROUNDS + 1)
    ]
    drawn = [a for a in answers if a is not None]
    if len(drawn) < len(answers) or len({shape(a[0]) for a in drawn}) != 1:
        return False
    # A person's same short word ("ack", "OK") to each of a program's alike mails: no machine answers.
    return all(_at_once(conn, received, answered) for _text, received, answered in drawn)
