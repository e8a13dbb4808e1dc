"""The outbox rows of bounces that may take in more numbers of the same mail (`gateway.bouncegroup`).

A mail to forty numbers of which twelve fail made twelve bounces; now the failures of one mail to one
address share one outbox row while it is unsent: the first failure inserts it, each next one adds its
SMS to the row's `bounced` (migration 66), and the content is rewritten once at the end of the write
that failed them (`gateway.bouncegroup`).
One row, one mail: there is nothing to claim together and nothing to mark sent together, so a crash
can neither send a number's bounce twice nor lose it (the row is the truth, as for every other mail).
A row is joinable while nobody tried to send it (`queued`, no attempt): once the outbox worker took
it, the next failure starts a row of its own.

The hold: a failure while other SMS of its mail are still in flight (in no final state) is due
`HOLD_SECONDS` later, or at once when the last of them ends, whichever comes first.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from gateway.store.outbox import OutboxRepo
from gateway.store.settling import FINAL_PART

# How long a bounce waits for other failures of its mail: the SMS of one mail mostly end within
# seconds of each other (one submit burst, reports within a minute); a bounce later than that is news
# the sender waits for. From the first failure, never prolonged: no number's bounce waits longer.
HOLD_SECONDS = 60.0
# The most numbers one bounce names: each failure rewrites the whole mail, and a mail to thousands of
# numbers failing whole (an operator's outage) made each write read and build them all again.
GROUP_MAX = 50
# The kind of a bounce that names more than one number: found by what it says when a phone's data is
# erased (`gateway.privacy.found`), as it is about several SMS and so about none by `message_ref`.
GROUP_KIND = "dsn-group"

_FINAL = ", ".join(f"'{state}'" for state in FINAL_PART)
# The latest first: the SMS of a mail end about in the order they were queued, so that one still in
# flight is found among the last few, not after reading every one that ended.
_IN_FLIGHT = f"SELECT 1 FROM messages WHERE email_id = ? AND state NOT IN ({_FINAL}) ORDER BY id DESC LIMIT 1"
_JOINABLE = "bounced IS NOT NULL AND state = 'queued' AND attempts = 0"


class OpenBounce(NamedTuple):
    id: int
    members: list[int]  # the SMS it names, in the order they failed


def email_of(conn: sqlite3.Connection, message_id: int) -> int | None:
    row = conn.execute("SELECT email_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    return None if row is None else int(row[0])


def in_flight(conn: sqlite3.Connection, email_id: int) -> bool:
    """Whether an SMS of the mail is still in no final state."""
    return conn.execute(_IN_FLIGHT, (email_id,)).fetchone() is not None


def open_bounce(conn: sqlite3.Connection, email_id: int, rcpt: str) -> OpenBounce | None:
    """The unsent bounce of the mail to `rcpt` that may take in another number, if any."""
    row = conn.execute(
        f"SELECT id, bounced FROM outbox WHERE email_ref = ? AND rcpt = ? AND {_JOINABLE}"
        " ORDER BY id DESC LIMIT 1",
        (email_id, rcpt),
    ).fetchone()
    if row is None:
        return None
    members = [int(m) for m in str(row[1]).split(",") if m]
    return OpenBounce(int(row[0]), members) if len(members) < GROUP_MAX else None


def add_bounce(
    outbox: OutboxRepo, rcpt: str, content: bytes, message_id: int, email_id: int, due: float
) -> int:
    """A bounce of one SMS, as `OutboxRepo.enqueue_mail` queues one (kind `dsn`, null sender), due at
    `due`, its SMS in `bounced` so that the next failure of the mail can join it."""
    now = outbox.clock()
    with outbox.transaction():
        cur = outbox.conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, message_ref, created_at,"
            " email_ref, bounced) VALUES ('dsn', '', ?, ?, ?, ?, ?, ?, ?)",
            (rcpt, content, due, message_id, now, email_id, str(message_id)),
        )
        assert cur.lastrowid is not None
        outbox.db.after_commit(outbox._queued)  # deduplicated: one wake-up a commit
        return cur.lastrowid


def grow_bounce(outbox: OutboxRepo, mail_id: int, members: list[int], due: float) -> bool:
    """The bounce `mail_id` to name `members`, due at `due` if that is sooner; its content is
    rewritten by `rewrite`, once for all the failures of one write. A bounce of several SMS is about
    the mail, not one of them (`message_ref` none, `email_ref` kept): each SMS's record lists it.
    False if it was claimed meanwhile (then the caller queues a bounce of its own)."""
    with outbox.transaction():
        return bool(
            outbox.conn.execute(
                f"UPDATE outbox SET kind = ?, bounced = ?, message_ref = NULL,"
                f" next_attempt_at = MIN(next_attempt_at, ?) WHERE id = ? AND {_JOINABLE}",
                (GROUP_KIND, ",".join(map(str, members)), due, mail_id),
            ).rowcount
        )


def members_of(conn: sqlite3.Connection, mail_id: int) -> list[int]:
    row = conn.execute(f"SELECT bounced FROM outbox WHERE id = ? AND {_JOINABLE}", (mail_id,)).fetchone()
    return [] if row is None else [int(m) for m in str(row[0]).split(",") if m]


def rewrite(outbox: OutboxRepo, mail_id: int, content: bytes, members: list[int]) -> None:
    """The content of a grown bounce, naming `members` (those still to be named)."""
    with outbox.transaction():
        changed = outbox.conn.execute(
            f"UPDATE outbox SET content = ?, bounced = ? WHERE id = ? AND {_JOINABLE}",
            (content, ",".join(map(str, members)), mail_id),
        ).rowcount
        if changed:
            outbox.db.after_commit(outbox._queued)  # deduplicated: one wake-up a commit


def release(outbox: OutboxRepo, email_id: int) -> int:
    """The held bounces of a mail with no SMS in flight any more made due now; how many."""
    now = outbox.clock()
    with outbox.transaction():
        if in_flight(outbox.conn, email_id):
            return 0
        moved = outbox.conn.execute(
            f"UPDATE outbox SET next_attempt_at = ? WHERE email_ref = ? AND {_JOINABLE}"
            " AND next_attempt_at > ?",
            (now, email_id, now),
        ).rowcount
        if moved:
            outbox.db.after_commit(outbox._queued)  # deduplicated: one wake-up a commit
        return moved
