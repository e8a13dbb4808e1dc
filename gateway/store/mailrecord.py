"""An accepted mail's audit record as admins read it (R-2.5): the search of the messages, one SMS in
full, and one mail with every SMS it became.

Functions of the connection: the panel runs them on its reader's thread, the CLI on its own store.
One query each for both, so that `smsgw queue show` and the panel's message page never tell the
same message two ways. The store runs no ANALYZE, so SQLite plans without statistics: the search
says which index drives it (see BULK_STATES), and tests/test_web_limits.py checks the plans.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.admin import HELD_UNTIL
from gateway.store.partnotes import resent_words

# The states most messages end in. The store never runs ANALYZE (it would change the plans of the
# hot queries), so SQLite cannot know that an account's "hold" or "expired" messages are few: it
# walks the account's index and filters, every message the account ever sent. A search for any
# other state is driven by the state's own index instead, and one for these by the account's.
BULK_STATES = ("submitted", "delivered")


def _rows(cur: Any) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def search_messages(
    conn: sqlite3.Connection,
    account_id: int | None,
    *,
    number: str | None = None,
    user: str | None = None,
    since: float | None = None,
    until: float | None = None,
    state: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
    now: float | None = None,
    part_state: str | None = None,
    window: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `before_id` is the last id of the previous page. With `now`, each row says
    until when a message held for quiet hours waits (`held_until`, else None): a list showed it as
    plain `queued` (the panel's CSV export, without `now`, probes no parts). `number` is E.164 as
    intake wrote it, `user` the envelope sender (any case); `part_state` keeps the messages with a
    part in that state (`deferred`, which `smsgw status` counts among the parts), by the due index.

    A company admin's search names their account and, for most forms, something narrower: the
    number, the user, a state few messages are in. Then the account is only a filter (the unary `+`
    keeps SQLite from driving the search by the account's index, which it prefers without
    statistics and which reads every message the account has), and the search costs what the
    operator's costs. So is the state when a user is given: SQLite drove a user's search for a
    state by the state's index and tried each message's sender, every message ever delivered for
    a user who sent none (1-3 s on a year of traffic); the user's mails (`emails_sender`) are few.

    A search by dates (and by no number or user, whose few messages their own index finds) walks
    the ids newest first, by the state's index when it names one, between the lowest and the
    highest id of the dates' messages (`date_window`; `window` when the caller has it already, as an
    export's later pages do), and stops at the page's end: by `created_at` alone it walked every
    newer message of the database (a January search on a year of traffic read all 1.4 M, 5.7 s
    cold, and a month with no SMS read them all to show nothing)."""
    narrower = number is not None or user is not None or (state is not None and state not in BULK_STATES)
    # A number's or a user's messages are few, read off their own index: the dates only filter them.
    by_dates = number is None and user is None and part_state is None
    if window is None and by_dates:
        window = date_window(conn, account_id, since, until)
    lowest, highest = window if window is not None and by_dates else (None, None)
    if lowest is not None and highest is not None and lowest > highest:
        return []
    where, args = [], []
    for cond, value in (
        ("+m.account_id = ?" if narrower else "m.account_id = ?", account_id),
        ("m.recipient = ?", number),
        ("e.mail_from = ? COLLATE NOCASE", user),
        ("m.created_at >= ?", since),
        ("m.created_at < ?", until),
        ("+m.state = ?" if user is not None else "m.state = ?", state),
        ("m.id < ?", before_id),
        ("m.id >= ?", lowest),
        ("m.id <= ?", highest),
        ("m.id IN (SELECT message_id FROM parts WHERE state = ?)", part_state),
    ):
        if value is not None:
            where.append(cond)
            args.append(value)
    sql = (
        "SELECT m.id, m.created_at, m.recipient, m.state, m.parts_total, m.reason, e.mail_from,"
        f" a.name AS account, {'NULL AS held_until' if now is None else HELD_UNTIL}"
        " FROM messages m JOIN emails e ON e.id = m.email_id LEFT JOIN accounts a ON a.id = m.account_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    held = () if now is None else (now,)
    return _rows(conn.execute(sql + " ORDER BY m.id DESC LIMIT ?", (*held, *args, limit)))


def date_window(
    conn: sqlite3.Connection, account_id: int | None, since: float | None, until: float | None
) -> tuple[int, int] | None:
    """Ids that every message created within the dates (of the account's, with `account_id`) lies
    between, `(1, 0)` when there is none; None without dates. Found without guessing ids from times:
    ids grow with time, but a message accepted after a step back of the clock carries an earlier
    time than the ones before it, and the search must find every message of its dates, as the
    search by `created_at` alone did. Nothing is written for it (no index more per SMS).

    An account's: the lowest and highest id of its index by (account_id, created_at), whose
    entries end with the id. The operator's: by the mails received within the dates, off
    emails_received (received_at, id). A message's `created_at` is its mail's `received_at`, the
    one time the acceptance stamps both with (`AcceptingRepo.insert_email`, which alone writes
    messages, in the mail's transaction right after the mail): so a message of the dates is one of
    those mails', and its id lies between the first message of the first of them and the last
    message of the last, as the ids of messages follow those of their mails. Read off the index
    entries of the dates' mails, never a row: 30-40 ms warm for a month of 100,000 mails, nothing
    for a month with none. A message written later has a higher id than any now: an export's later
    pages may reuse its first page's window (they are below its `before_id`)."""
    if since is None and until is None:
        return None
    where, args = [], []
    for cond, value in (("{at} >= ?", since), ("{at} < ?", until)):
        if value is not None:
            where.append(cond)
            args.append(value)
    if account_id is not None:
        dates = " AND ".join(where).format(at="created_at")
        sql = (
            "SELECT MIN(id), MAX(id) FROM messages INDEXED BY messages_billing"
            f" WHERE account_id = ? AND {dates}"
        )
        args.insert(0, account_id)
    else:
        dates = " AND ".join(where).format(at="received_at")
        sql = (
            "SELECT (SELECT id FROM messages INDEXED BY messages_email WHERE email_id >= w.first"
            " ORDER BY email_id, id LIMIT 1), (SELECT id FROM messages INDEXED BY messages_email"
            " WHERE email_id <= w.last ORDER BY email_id DESC, id DESC LIMIT 1)"
            " FROM (SELECT MIN(id) AS first, MAX(id) AS last FROM emails INDEXED BY emails_received"
            f" WHERE {dates}) w"
        )
    lowest, highest = conn.execute(sql, args).fetchone()
    return (1, 0) if lowest is None or highest is None else (int(lowest), int(highest))


def message_detail(conn: sqlite3.Connection, message_id: int, now: float) -> dict[str, Any] | None:
    """One SMS in full: its mail's sender and IP, its parts, delivery reports and the mails sent
    about it; None when there is no such message (or the purge took its mail). `now` tells a
    message held for quiet hours (`held_until`). Each part's `twice` says that the phone may have it
    twice, sent again after a submit that went unanswered (`partnotes.resent_words`), or is None."""
    cur = conn.execute(
        "SELECT m.id, m.email_id, m.account_id, a.name AS account, m.recipient, m.source, m.text,"
        " m.parts_total, m.state, m.reason, m.created_at, m.expires_at, m.finished_at, m.notify, m.orcpt,"
        " e.mail_from, e.client_ip, e.subject, e.header_message_id, e.dsn_ret, e.envid,"
        f" {HELD_UNTIL} FROM messages m"
        " JOIN emails e ON e.id = m.email_id LEFT JOIN accounts a ON a.id = m.account_id WHERE m.id = ?",
        (now, message_id),
    )
    found = _rows(cur)
    if not found:
        return None
    msg = found[0]
    msg["parts"] = _rows(
        conn.execute(
            "SELECT id, seq, state, attempts, link, smsc_id, submitted_at, done_at, error, text, resent_after"
            " FROM parts WHERE message_id = ? ORDER BY seq",
            (message_id,),
        )
    )
    for part in msg["parts"]:  # a copy the phone may have twice, said in one wording for both readers
        part["twice"] = resent_words(part["resent_after"])
    msg["dlrs"] = _rows(
        conn.execute(
            "SELECT d.received_at, d.link, d.smsc_id, d.status, d.error, p.seq FROM dlrs d"
            " JOIN parts p ON p.id = d.part_id WHERE p.message_id = ? ORDER BY d.id",
            (message_id,),
        )
    )
    msg["mails"] = _rows(conn.execute(_MAILS, (message_id, msg["email_id"], message_id)))
    return msg


# The mails sent about an SMS: those about it alone (a DSN, a delivery report: `message_ref`), those
# about the whole mail it came in (held for quiet hours, text shortened, confirmation, numbers not
# sent: `email_ref` alone), which each of the mail's SMS lists once, marked so (`about`, and in `kind`,
# which the page and `queue show` print), and a report naming several of the mail's SMS (a bounce or a
# confirmation of several numbers, migration 66's `bounced`), listed under the SMS it names alone:
# under every SMS of the mail, a delivered one showed the bounce as if it had bounced. Only the first
# were read: a text cut to the part limit, whose sender was told so, showed no mail sent about it.
# Each branch by its own partial index. Binds: the message, its mail, the message.
_MAILS = (
    "SELECT id, kind, rcpt, state, created_at, sent_at, 'sms' AS about FROM outbox WHERE message_ref = ?"
    " UNION ALL SELECT id, CASE WHEN bounced IS NULL THEN kind || ' (about the whole mail)' ELSE kind END,"
    " rcpt, state, created_at, sent_at, CASE WHEN bounced IS NULL THEN 'mail' ELSE 'sms' END"
    " FROM outbox WHERE email_ref = ? AND message_ref IS NULL"
    " AND (bounced IS NULL OR instr(',' || bounced || ',', ',' || ? || ',') > 0) ORDER BY id"
)


def mail_record(conn: sqlite3.Connection, email_id: int, now: float) -> dict[str, Any] | None:
    """One accepted mail as R-2.5 records it: who (envelope sender, user, account), from which IP,
    when, the subject and text as accepted, what cleaning removed, why it was only recorded (an
    auto-reply, a bounce), and under `messages` every SMS it became, each as `message_detail` reads
    it. None when there is no such mail (or the purge took it)."""
    found = _rows(
        conn.execute(
            "SELECT e.id, e.received_at, e.mail_from, u.email AS user, a.name AS account, e.client_ip,"
            " e.header_message_id, e.subject, e.text, e.removed, e.automatic, e.dsn_ret, e.envid"
            " FROM emails e"
            " LEFT JOIN users u ON u.id = e.user_id LEFT JOIN accounts a ON a.id = e.account_id"
            " WHERE e.id = ?",
            (email_id,),
        )
    )
    if not found:
        return None
    mail = found[0]
    ids = conn.execute(
        "SELECT id FROM messages INDEXED BY messages_email WHERE email_id = ? ORDER BY id", (email_id,)
    ).fetchall()
    mail["messages"] = [m for (mid,) in ids if (m := message_detail(conn, mid, now)) is not None]
    return mail


def mail_of_message(conn: sqlite3.Connection, message_id: int) -> int | None:
    """The id of the mail a message came from (the id `queue list` shows is the message's)."""
    row = conn.execute("SELECT email_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    return None if row is None else int(row[0])
