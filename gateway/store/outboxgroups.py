"""The outbox rows of reports that may take in more numbers of the same mail (`gateway.bouncegroup`).

A mail to forty numbers of which twelve fail made twelve bounces, and with confirmations on, its
deliveries twenty-eight receipts; now the failures of one mail to one address share one outbox row
while it is unsent, and so do its confirmations (a plain delivered notice, or an RFC 3461
NOTIFY=SUCCESS DSN): the first SMS inserts it, each next one adds its SMS to the row's `bounced`
(migration 66: the SMS the row names, whatever it tells of them), and the content is rewritten once at
the end of the write that ended them (`gateway.bouncegroup`).
A row's family is told by what it is and what its SMS are: its envelope sender (empty for a DSN, the
gateway's address for a notice) and whether its first SMS was delivered (a confirmation) or not (a
bounce), so that a bounce never takes in a delivery, nor a receipt a plain notice, and the kinds stay
as they were (once a row names several numbers, `GROUP_KIND` for a bounce, `CONFIRM_GROUP_KIND` for a
confirmation).
One row, one mail: there is nothing to claim together and nothing to mark sent together, so a crash
can neither send a number's report twice nor lose it (the row is the truth, as for every other mail).
A row is joinable while nobody tried to send it (`queued`, no attempt): once the outbox worker took
it, the next SMS starts a row of its own.

The hold: an SMS that ends while other SMS of its mail are still in flight (in no final state) is
told `HOLD_SECONDS` later, or at once when the last of them ends, whichever comes first.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from gateway.store.idfloors import next_id
from gateway.store.outbox import OutboxRepo
from gateway.store.settling import FINAL_PART, UNREPORTED

# How long a bounce waits for other failures of its mail: the SMS of one mail mostly end within
# seconds of each other (one submit burst, reports within a minute); a bounce later than that is news
# the sender waits for. From the first failure, never prolonged: no number's bounce waits longer.
HOLD_SECONDS = 60.0
# The most numbers one report names: a write that grows it builds it whole again (once, at the write's
# end), and a mail to thousands of numbers failing whole (an operator's outage) made each such write
# read and build them all; past this many, the next SMS of the mail start a report of their own.
GROUP_MAX = 50
# The kinds of a report that names more than one number, a bounce and a confirmation (migration 68: a
# confirmation had the bounce's, and `queue show`, the panel, `outbox list` and the log called it a
# bounce): found by what they say when a phone's data is erased (`gateway.privacy.found`, off the
# index of kinds), as each is about several SMS and so about none by `message_ref`.
GROUP_KIND = "dsn-group"
CONFIRM_GROUP_KIND = "notify-group"
# The ends of an SMS a confirmation tells of (`unreported`: the SMSC took it, no report came); any other
# final state is a bounce's.
TOLD = ("delivered", UNREPORTED)
# The ends a bounce tells of: an SMS a bounce named that is in none of them now was sent again by an
# admin (`AdminRepo.retry_message` takes it out of an unsent one) and is no failure to report.
BOUNCED = tuple(state for state in FINAL_PART if state not in TOLD)

_FINAL = ", ".join(f"'{state}'" for state in FINAL_PART)
# The latest first: the SMS of a mail end about in the order they were queued, so that one still in
# flight is found among the last few, not after reading every one that ended.
_IN_FLIGHT = f"SELECT 1 FROM messages WHERE email_id = ? AND state NOT IN ({_FINAL}) ORDER BY id DESC LIMIT 1"
_JOINABLE = "bounced IS NOT NULL AND state = 'queued' AND attempts = 0"
# Whether the row's first SMS (its leading id: SQLite's CAST reads the digits before the comma) was told
# as delivered: the family of the row, beside its envelope sender.
_TOLD_STATES = ", ".join(f"'{state}'" for state in TOLD)
_TOLD = f"(SELECT state IN ({_TOLD_STATES}) FROM messages WHERE id = CAST(bounced AS INTEGER))"


class OpenGroup(NamedTuple):
    id: int
    members: list[int]  # the SMS it names, in the order they ended


def group_kind(told: bool) -> str:
    """The kind of a report naming several numbers: a confirmation's (`told`), else a bounce's."""
    return CONFIRM_GROUP_KIND if told else GROUP_KIND


def members(bounced: object) -> list[int]:
    """The SMS a row names, in the order they ended: `outbox.bounced` (migration 66) holds their ids,
    comma-separated; NULL for a mail that is no such report. The one reader of that column."""
    return [int(m) for m in str(bounced).split(",") if m] if bounced else []


def email_of(conn: sqlite3.Connection, message_id: int) -> int | None:
    row = conn.execute("SELECT email_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    return None if row is None else int(row[0])


def mail_size(conn: sqlite3.Connection, message_id: int) -> int:
    """How many SMS the mail of `message_id` became (off its index of SMS by mail)."""
    sql = (
        "SELECT COUNT(*) FROM messages INDEXED BY messages_email"
        " WHERE email_id = (SELECT email_id FROM messages WHERE id = ?)"
    )
    return int(conn.execute(sql, (message_id,)).fetchone()[0])


def in_flight(conn: sqlite3.Connection, email_id: int) -> bool:
    """Whether an SMS of the mail is still in no final state."""
    return conn.execute(_IN_FLIGHT, (email_id,)).fetchone() is not None


def open_group(
    conn: sqlite3.Connection, email_id: int, rcpt: str, mail_from: str, told: bool
) -> OpenGroup | None:
    """The unsent report of the mail to `rcpt` from `mail_from` that may take in another number, if
    any: a confirmation (`told`), else a bounce."""
    row = conn.execute(
        f"SELECT id, bounced FROM outbox WHERE email_ref = ? AND rcpt = ? AND {_JOINABLE} AND mail_from = ?"
        f" AND {_TOLD} = ? ORDER BY id DESC LIMIT 1",
        (email_id, rcpt, mail_from, int(told)),
    ).fetchone()
    if row is None:
        return None
    named = members(row[1])
    return OpenGroup(int(row[0]), named) if len(named) < GROUP_MAX else None


def add_group(
    outbox: OutboxRepo,
    kind: str,
    mail_from: str,
    rcpt: str,
    content: bytes,
    message_id: int,
    email_id: int,
    due: float,
) -> int:
    """A report of one SMS, as `OutboxRepo.enqueue_mail` queues one (a bounce: kind `dsn`, the null
    sender), due at `due`, its SMS in `bounced` so that the next SMS of the mail can join it."""
    now = outbox.clock()
    with outbox.transaction():
        cur = outbox.conn.execute(
            "INSERT INTO outbox (id, kind, mail_from, rcpt, content, next_attempt_at, message_ref,"
            " created_at, email_ref, bounced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                next_id(outbox.db, outbox.conn, "outbox"),  # after a restore, past the ids it had given
                *(kind, mail_from, rcpt, content, due, message_id, now, email_id, str(message_id)),
            ),
        )
        assert cur.lastrowid is not None
        outbox.db.after_commit(outbox._queued)  # deduplicated: one wake-up a commit
        return cur.lastrowid


def grow_group(outbox: OutboxRepo, mail_id: int, members: list[int], due: float, told: bool) -> bool:
    """The report `mail_id` (a confirmation if `told`) to name `members`, due at `due` if that is
    sooner; its content is rewritten by `rewrite`, once for all the SMS of one write. A report of
    several SMS is about the mail, not one of them (`message_ref` none, `email_ref` kept): each SMS's
    record lists it. False if it was claimed meanwhile (then the caller queues a report of its own)."""
    with outbox.transaction():
        return bool(
            outbox.conn.execute(
                f"UPDATE outbox SET kind = ?, bounced = ?, message_ref = NULL,"
                f" next_attempt_at = MIN(next_attempt_at, ?) WHERE id = ? AND {_JOINABLE}",
                (group_kind(told), ",".join(map(str, members)), due, mail_id),
            ).rowcount
        )


def members_of(conn: sqlite3.Connection, mail_id: int) -> list[int]:
    """The SMS the unsent report `mail_id` names (none once it was taken for sending): those a write
    grew it by are read back with the ones it named before, to build it once for all."""
    row = conn.execute(f"SELECT bounced FROM outbox WHERE id = ? AND {_JOINABLE}", (mail_id,)).fetchone()
    return [] if row is None else members(row[0])


class Unsent(NamedTuple):
    rcpt: str
    mail_from: str
    content: bytes
    members: list[int]
    told: bool  # a confirmation, else a bounce


def unsent(conn: sqlite3.Connection, mail_id: int) -> Unsent | None:
    """The report `mail_id` while nobody tried to send it (its content may still be rewritten), else
    None: once taken for sending it goes as it was built."""
    row = conn.execute(
        f"SELECT rcpt, mail_from, content, bounced, {_TOLD} FROM outbox WHERE id = ? AND {_JOINABLE}",
        (mail_id,),
    ).fetchone()
    if row is None:
        return None
    return Unsent(str(row[0]), str(row[1]), bytes(row[2]), members(row[3]), bool(row[4]))


def rewrite(
    outbox: OutboxRepo, mail_id: int, content: bytes, named: list[int], kind: str, told: bool
) -> None:
    """The content of a grown report (a confirmation if `told`), naming `named` (those still to be
    named): of one SMS, `kind` is that of its report alone and the row is about that SMS
    (`message_ref`), as if it never grew."""
    about = named[0] if len(named) == 1 else None
    with outbox.transaction():
        changed = outbox.conn.execute(
            "UPDATE outbox SET content = ?, bounced = ?, kind = ?, message_ref = ?"
            f" WHERE id = ? AND {_JOINABLE}",
            (
                content,
                ",".join(map(str, named)),
                kind if about is not None else group_kind(told),
                about,
                mail_id,
            ),
        ).rowcount
        if changed:
            outbox.db.after_commit(outbox._queued)  # deduplicated: one wake-up a commit


def release(outbox: OutboxRepo, email_id: int) -> int:
    """The held reports of a mail (bounces and confirmations) with no SMS in flight any more made due
    now; how many."""
    now = outbox.clock()
    with outbox.transaction():
        if in_flight(outbox.conn, email_id):
            return 0
        # By the mail's index: without statistics SQLite took outbox_due (state, next_attempt_at) for
        # `state = 'queued'` and read every queued mail waiting for a retry at each release (26 ms with
        # 200,000 of them deferred).
        moved = outbox.conn.execute(
            "UPDATE outbox INDEXED BY outbox_email_ref SET next_attempt_at = ?"
            f" WHERE email_ref = ? AND {_JOINABLE}"
            " AND next_attempt_at > ?",
            (now, email_id, now),
        ).rowcount
        if moved:
            outbox.db.after_commit(outbox._queued)  # deduplicated: one wake-up a commit
        return moved


def take_out(conn: sqlite3.Connection, message_id: int) -> list[int]:
    """An admin's retry of `message_id`, in its transaction: the SMS out of every unsent report of its
    mail naming it, since it is no failure (nor delivery) to report any more; a report naming it alone
    is deleted (never tried, nothing refers to it). The reports still naming other SMS, whose content
    names this one too until it is built again (`gateway.bouncegroup.regroup`)."""
    left: list[int] = []
    rows = conn.execute(
        "SELECT id, bounced FROM outbox INDEXED BY outbox_email_ref WHERE email_ref ="
        f" (SELECT email_id FROM messages WHERE id = ?) AND {_JOINABLE}",
        (message_id,),
    ).fetchall()
    for mail_id, bounced in rows:
        named = members(bounced)
        if message_id not in named:
            continue
        rest = [m for m in named if m != message_id]
        if not rest:
            conn.execute("DELETE FROM outbox WHERE id = ?", (mail_id,))
            continue
        conn.execute("UPDATE outbox SET bounced = ? WHERE id = ?", (",".join(map(str, rest)), mail_id))
        left.append(int(mail_id))
    return left
