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
when they read it. So each answer that drew a round must have come fast after the SMS it answers
(`_at_once`), as far as the MO records which SMS it answers (`mo.answered_message_id`; one that does
not counts as fast).
Measured from the SMS's submit with a minute's threshold, both sides were wrong: an SMSC that held the
SMS a minute and a half (a queue, a phone just back in coverage) made an auto-reply app's answer look
slow, and its loop ran on when the receipt came after the answer or never (routes without receipts,
receipts sent in batches); an on-call person answering each alert "ack" within half a minute was still
refused. The phone had the SMS when its receipt came, so the delay counts from the receipt's arrival
when that came before the answer, and "fast" is `PHONE_FAST_SECONDS`, 15 s: an auto-reply app answers
within a few seconds of the SMS arriving, a person reads, types and sends in more. Where a receipt was
asked for and had not come by the answer, the delay is unknown and counted fast, for a loop must not
escape because its receipts come late ("untimed": the refusal says no receipt timed it, not "within
15 seconds"). Where none was asked (a CIMD2 link with `status_reports = false`), none will come: counted
fast, every answer on such a route was refused, a person's "ack" two minutes after each alert too. There
the submit bounds the delay from above, and the answer is fast only within the same 15 s of the last
part's submit: then it surely came within 15 s of the phone having the SMS, and the refusal's words are
true. A minute (the earlier bound) refused a person acking half a minute after each alert; 15 s lets an
auto-reply app's loop through only where the network's way there and back takes most of it, and such a
loop stays bounded by the hourly limit of answer mails, while a person's refused alert is lost to them.
(The same delay round after round was weighed as a second sign, and left: it is measured only where
receipts come first, and asking for it would let a loop whose receipts come late escape again.)
Mail marked automatic never gets here (`gateway.smtp.automail`), but mail marked auto-generated that
an account has sent as SMS (`--auto-generated send`) does: a helpdesk may mark its acknowledgements so.

The text compared is the SMS as planned (GSM mapping, transliteration, truncation), as `messages.text`
keeps it: a mail's own text with a typographic apostrophe or a dash never equalled its stored SMS.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection
from typing import Literal

FAST_SECONDS = 600.0  # a polling helpdesk answers by its next poll: every minute to every few minutes
ROUNDS = 3  # rounds before this one, each fast and alike, each drawn by an alike answer
SPAN_SECONDS = 3600.0  # all of them within the hour
# An auto-reply app answers within a few seconds of the SMS reaching the phone (its receipt's arrival);
# a person reading it, typing and sending takes longer.
PHONE_FAST_SECONDS = 15.0
# How the answers that drew a loop's rounds were timed, for the refusal's words (`gateway.smtp.mailloop`):
# "timed", each within PHONE_FAST_SECONDS of its SMS's receipt, or of its submit where no receipt was asked;
# "untimed", one at least came before a receipt asked for (or names no SMS): its delay is not known.
Timing = Literal["timed", "untimed"]
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


def _at_once(
    conn: sqlite3.Connection, received: float, answered: int | None, unasked: Collection[str]
) -> Timing | None:
    """Whether an MO received at `received` may have come within PHONE_FAST_SECONDS of the SMS it
    answers (`answered`, a `messages` row) reaching the phone, and how that was told; None: slow.
    Timed by receipts when a delivery receipt of every part of it came before the MO: the phone had
    the SMS then. Else, where a part went by a link that asks for receipts (not in `unasked`), its
    receipt may come after the answer: the delay is not known, and counts as fast. Where none was
    asked, none will come: timed by the last part's submit, an upper bound of the delay. An MO that
    records no SMS counts as fast too: alike answers were all the guard asked of it before."""
    if answered is None:
        return "untimed"
    parts = conn.execute(
        "SELECT p.state = 'delivered' AND p.done_at <= ?, p.done_at, p.link, COALESCE(p.submitted_at,"
        " m.created_at) FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.message_id = ?",
        (received, answered),
    ).fetchall()
    if not parts:
        return "untimed"
    if all(before for before, _done, _link, _sent in parts):
        reached = max(float(done) for _before, done, _link, _sent in parts)
    elif any(link is None or link not in unasked for _before, _done, link, _sent in parts):
        return "untimed"
    else:
        reached = max(float(sent) for _before, _done, _link, sent in parts)
    return "timed" if received - reached <= PHONE_FAST_SECONDS else None


def looping(
    conn: sqlite3.Connection, phone: str, user: str, text: str, now: float, unasked: Collection[str] = ()
) -> Timing | None:
    """Whether a mail from `user` to `phone` whose SMS is `text` (as planned), now, is the next round
    of a loop, and how the phone's answers were timed; None: no loop. `unasked`: the links that ask
    the SMSC for no receipts."""
    # Most phones sent nothing within the window and the waits before it: one seek of the phone's MOs
    # by time, without the join to answer mails and its sort, tells them apart.
    if conn.execute(_ANY_MO, (phone, now - FAST_SECONDS - WAITED_SECONDS)).fetchone() is None:
        return None
    if _answer_between(conn, phone, user, None, now) is None:  # most of the rest: no answer just before
        return None
    # The rounds, newest first, and the one before the oldest: it bounds when that one's answer came.
    rows = conn.execute(
        "SELECT m.created_at, m.text FROM messages m JOIN emails e ON e.id = m.email_id"
        " WHERE m.recipient = ? AND m.created_at >= ? AND e.mail_from = ? COLLATE NOCASE"
        " ORDER BY m.created_at DESC LIMIT ?",
        (phone, now - SPAN_SECONDS - FAST_SECONDS, user, ROUNDS + 1),
    ).fetchall()
    rounds = [(at, t) for at, t in rows[:ROUNDS] if at >= now - SPAN_SECONDS]
    if len(rounds) < ROUNDS:
        return None
    alike = shape(text)
    if any(shape(t) != alike for _at, t in rounds):
        return None
    times = [now, *(at for at, _t in rows)]
    answers = [
        _answer_row(conn, phone, user, times[i + 1] if i + 1 < len(times) else None, times[i])
        for i in range(ROUNDS + 1)
    ]
    drawn = [a for a in answers if a is not None]
    if len(drawn) < len(answers) or len({shape(a[0]) for a in drawn}) != 1:
        return None
    # A person's same short word ("ack", "OK") to each of a program's alike mails: no machine answers.
    timings = [_at_once(conn, received, answered, unasked) for _text, received, answered in drawn]
    if None in timings:
        return None
    return "untimed" if "untimed" in timings else "timed"
