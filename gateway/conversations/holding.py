"""Whether the user who holds an address now is the one who sent a conversation's SMS or a mail: the
rule behind `repo.gone` and `gateway.newholder`, apart from the repository that reads conversations."""

from __future__ import annotations

import sqlite3

from gateway.conversations.rows import Conversation

# How far ahead of the clock now a user's time of adding may be and still be taken as written.
CLOCK_SLACK_SECONDS = 300.0


def added_since(added_at: float, since: float, now: float) -> bool:
    """Whether the address was added as a user after `since`, by the times stored. A time of adding
    ahead of the clock now says the clock was wrong then (a machine started before its time was
    set, then corrected): compared, it made every user added then "added again" after every later
    mail, and their answers and reports went to the fallback address for as long as the clock had
    been ahead. Such a time tells nothing, and the address is taken as held since before."""
    return since < added_at <= now + CLOCK_SLACK_SECONDS


def sent_by_holder(conn: sqlite3.Connection, conv: Conversation) -> bool:
    """Whether the mail of the SMS the phone answers (`Conversation.sent_by`), or, when that is not
    known, the user's latest mail to the conversation's phone, is recorded under the user who holds
    the address now: removing a user clears it from their mails (`emails.user_id`), and adding one
    makes a new row, so this needs no clock. The times alone misled once the clock caught up with a
    time of adding written while it ran ahead. Read only where the times say "added again".

    The latest mail is not the one answered while its SMS waits (quiet hours, an outage): the
    successor's held SMS made the predecessor's answered one look like theirs."""
    if conv.sent_by is not None:
        sql = "SELECT 1 FROM users WHERE email = ? AND id = ?"
        return conn.execute(sql, (conv.user_email, conv.sent_by)).fetchone() is not None
    row = conn.execute(
        "SELECT e.user_id = u.id FROM messages m JOIN emails e ON e.id = m.email_id"
        " JOIN users u ON u.email = e.mail_from WHERE m.recipient = ? AND e.mail_from = ?"
        " ORDER BY m.id DESC LIMIT 1",
        (conv.phone, conv.user_email),
    ).fetchone()
    return bool(row and row[0])
