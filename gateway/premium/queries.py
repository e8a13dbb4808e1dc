"""The premium tables' reads that other parts of the gateway make, on connections of their own or in
their own writes: the panel's reader, check-config's read-only file, billing's reader, the claim
of the SMS queue, the phone commands of `gateway.privacy`, RCPT to a former domain, and the texts the
retention purge empties (`gateway.retentionpurge`).

Here, in the package that owns the tables (`premium_*`), so that the tables' SQL has one home
(ARCHITECTURE.md section 3): a change of them is made and read in one package. Functions of a
connection and the fragments other queries join, no more: importing this module imports nothing of
the gateway, so that the commands that read it still start fast (`smsgw --help` reads none of it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.premium.rows import Service
from gateway.store.forwardsteps import stepped_since, window_start

SERVICE_COLUMNS = "id, password, account_id, email, numbers, verified_at, created_at, removed_at"
# The ids of the premium SMS a phone sent (bind: its E.164 number), for a query of another table
# that names them (`outbox.premium_ref`, `premium_answers.premium_mo_id`).
PHONE_VOTES = "SELECT id FROM premium_mo WHERE phone = ?"
# A free answer's share of a query of messages (SMS to phones): its id in `premium_answers` as column
# `{alias}.id`, NULL for any other SMS. By `premium_answers_message`, one probe per message.
_ANSWER_JOIN = " LEFT JOIN premium_answers {alias} ON {alias}.message_id = {message}.id"
# Batches of ids under SQLite's 999 variables.
_BATCH = 500


# A premium address's token still answered, by the address's kind: a removed service's confirmation is
# not (DATA refuses it), the SMS it received before its removal are (within the reply window).
_TOKEN_ANSWERED = {
    "premium": "SELECT 1 FROM premium_mo t LEFT JOIN premium_services s ON s.id = t.service_id"
    " WHERE t.token = ? AND (s.removed_at IS NULL OR t.received_at < s.removed_at)",
    "confirm": "SELECT 1 FROM premium_verifications t LEFT JOIN premium_services s"
    " ON s.id = t.service_id WHERE t.token = ? AND s.removed_at IS NULL",
}


def answer_join(message: str = "m", alias: str = "pa") -> str:
    """SQL: the free premium answer an SMS of `messages` (as `message`) is, joined as `alias`."""
    return _ANSWER_JOIN.format(message=message, alias=alias)


def token_answered(conn: sqlite3.Connection, kind: str, token: str) -> bool:
    """Whether mail to the premium address of `kind` ('premium': an SMS's answers, 'confirm': a
    service's confirmation) and `token` is still taken (`gateway.smtp.formerdomains`)."""
    return conn.execute(_TOKEN_ANSWERED[kind], (token,)).fetchone() is not None


def live_services(conn: sqlite3.Connection, account_id: int | None = None) -> list[Service]:
    """The services not removed, by password; an account's only, or every one for None."""
    scope, args = ("", ()) if account_id is None else (" AND account_id = ?", (account_id,))
    return [
        Service(*r)
        for r in conn.execute(
            f"SELECT {SERVICE_COLUMNS} FROM premium_services WHERE removed_at IS NULL{scope}"
            " ORDER BY password",
            args,
        )
    ]


def live_acls(conn: sqlite3.Connection, account_id: int | None = None) -> dict[int, list[str]]:
    """The reply lists of the services not removed (an account's, or every one's for None), by
    service id, in address order: one query for all of them."""
    scope, args = ("", ()) if account_id is None else (" AND s.account_id = ?", (account_id,))
    acl: dict[int, list[str]] = {}
    for service_id, address in conn.execute(
        "SELECT a.service_id, a.address FROM premium_reply_acl a"
        " JOIN premium_services s ON s.id = a.service_id"
        f" WHERE s.removed_at IS NULL{scope}"
        " ORDER BY a.service_id, a.address",
        args,
    ):
        acl.setdefault(service_id, []).append(address)
    return acl


def awaiting_counts(conn: sqlite3.Connection, service_ids: Sequence[int]) -> dict[int, int]:
    """How many SMS each of these services keeps until its address confirms (`premium_mo_awaiting`:
    the awaiting ones alone); a service keeping none is not in it."""
    kept: dict[int, int] = {}
    for i in range(0, len(service_ids), _BATCH):
        ids = list(service_ids[i : i + _BATCH])
        kept.update(
            conn.execute(
                "SELECT service_id, COUNT(*) FROM premium_mo INDEXED BY premium_mo_awaiting"
                f" WHERE state = 'awaiting' AND service_id IN ({','.join('?' * len(ids))})"
                " GROUP BY service_id",
                ids,
            ).fetchall()
        )
    return kept


def bound_numbers(conn: sqlite3.Connection, account_id: int | None = None) -> list[tuple[str, str]]:
    """(password, its numbers space separated) of the services not removed that run on some numbers
    only (an account's, or every one's for None), by password."""
    scope, args = ("", ()) if account_id is None else (" AND account_id = ?", (account_id,))
    return conn.execute(
        "SELECT password, numbers FROM premium_services WHERE removed_at IS NULL AND numbers != ''"
        f"{scope} ORDER BY password",
        args,
    ).fetchall()


def service_addresses(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(password, the `premium set` option that sets it, address) of every address a service not
    removed mails or takes answers from: its own, and its reply list's."""
    return conn.execute(
        "SELECT password, '--email', email FROM premium_services WHERE removed_at IS NULL UNION ALL"
        " SELECT s.password, '--reply-acl', a.address FROM premium_reply_acl a JOIN premium_services s"
        " ON s.id = a.service_id WHERE s.removed_at IS NULL ORDER BY 1, 2, 3"
    ).fetchall()


def confirmations_out(conn: sqlite3.Connection) -> list[str]:
    """The passwords of the services whose confirmation is still out: not confirmed, a token neither
    used nor expired (by SQLite's clock: the caller may have none), a step forward of the clock within
    its lifetime counting as no time passed (`confirmation.token_expired`)."""
    lifetime_start = stepped_since("(julianday('now') - 2440587.5) * 86400.0 - (v.expires_at - v.created_at)")
    return [
        password
        for (password,) in conn.execute(
            "SELECT s.password FROM premium_services s WHERE s.removed_at IS NULL AND s.verified_at IS NULL"
            " AND EXISTS (SELECT 1 FROM premium_verifications v WHERE v.service_id = s.id"
            f" AND v.used_at IS NULL AND v.expires_at > v.created_at AND v.created_at >= {lifetime_start})"
            " ORDER BY s.password"
        )
    ]


def votes_answered(conn: sqlite3.Connection, message_ids: Sequence[int]) -> dict[int, float]:
    """Of these SMS, the free premium answers: the time the vote each answers came, by message id."""
    marks = ",".join("?" * len(message_ids))
    rows = conn.execute(
        "SELECT a.message_id, m.received_at FROM premium_answers a"
        " JOIN premium_mo m ON m.id = a.premium_mo_id"
        f" WHERE a.message_id IN ({marks})",
        list(message_ids),
    )
    return dict(rows.fetchall())


def generation(conn: sqlite3.Connection) -> int:
    """`premium_generation`: a new value whenever a vote stored before changes (migration 61)."""
    (value,) = conn.execute("SELECT value FROM premium_generation").fetchone()
    return int(value)


def last_vote(conn: sqlite3.Connection) -> int:
    """The id of the last premium SMS stored, 0 for none."""
    return int(conn.execute("SELECT MAX(id) FROM premium_mo").fetchone()[0] or 0)


def vote_mark(conn: sqlite3.Connection, vote: int) -> tuple[object, ...] | None:
    """What tells the vote of that id from another's (its `mo_id` and time): a restored copy holds
    other votes under ids read before. None: no such vote."""
    row = conn.execute("SELECT mo_id, received_at FROM premium_mo WHERE id = ?", (vote,)).fetchone()
    return None if row is None else tuple(row)


def phone_votes(phone: str) -> tuple[str, tuple[object, ...]]:
    """The premium SMS the phone sent, with their money and state: the query and its arguments, for a
    caller that orders, pages and counts them (`gateway.privacy`)."""
    return (
        "SELECT id, received_at, number, password, parts, price, state, answers, text FROM premium_mo"
        " WHERE phone = ?",
        (phone,),
    )


def awaiting_from(conn: sqlite3.Connection, phone: str) -> int:
    """How many of the phone's premium SMS are kept until their service's address confirms."""
    sql = "SELECT COUNT(*) FROM premium_mo WHERE phone = ? AND state = 'awaiting'"
    return int(conn.execute(sql, (phone,)).fetchone()[0])


def erase_phone(
    conn: sqlite3.Connection, phone: str, marker: str, state: str, note: str
) -> tuple[int, int, int]:
    """The phone's premium texts replaced by `marker`, in the caller's transaction (`smsgw phone
    forget`): those of the free answers to its SMS, and its SMS's own; an SMS kept until its
    client's address confirms is ended as `state` with `note` (on its row of table mo too). Its
    billing facts stay. Returns (answers, SMS ended so, SMS) changed."""
    answers = conn.execute(
        f"UPDATE premium_answers SET text = ? WHERE text IS NOT NULL AND premium_mo_id IN ({PHONE_VOTES})",
        (marker, phone),
    ).rowcount
    # Kept until the client's address confirms: left so, the confirmation would mail the marker.
    conn.execute(
        "UPDATE mo SET note = ? WHERE id IN"
        " (SELECT mo_id FROM premium_mo WHERE phone = ? AND state = 'awaiting')",
        (note, phone),
    )
    awaiting = conn.execute(
        "UPDATE premium_mo SET state = ?, note = ? WHERE phone = ? AND state = 'awaiting'",
        (state, note, phone),
    ).rowcount
    texts = conn.execute("UPDATE premium_mo SET text = ? WHERE phone = ?", (marker, phone)).rowcount
    return int(answers), int(awaiting), int(texts)


def purge_texts(
    conn: sqlite3.Connection, cutoff: float, reply_window: float, after: tuple[float, int], limit: int
) -> tuple[float, int] | None:
    """The retention purge's share (`gateway.store.retention.FeaturePurge`): up to `limit` texts each of
    settled premium SMS and of free answers older than `cutoff` go; the rows, money records, stay, and
    an SMS still awaiting its client's address keeps its text. The rows changed are passed over by
    their empty texts, so `after` is only handed back (the reply window is the conversations'):
    returned while a chunk found a full `limit`, None once it found fewer. `cutoff` counts a step
    forward of the clock since as no time passed, as the purge of the SMS does (`retention.purge_before`)."""
    cutoff = window_start(conn, cutoff, 0.0)
    n = conn.execute(
        "UPDATE premium_mo SET text = '' WHERE id IN (SELECT id FROM premium_mo WHERE received_at < ?"
        " AND state != 'awaiting' AND text != '' LIMIT ?)",
        (cutoff, limit),
    ).rowcount
    n += conn.execute(
        "UPDATE premium_answers SET text = NULL WHERE id IN (SELECT id FROM premium_answers"
        " WHERE created_at < ? AND text IS NOT NULL LIMIT ?)",
        (cutoff, limit),
    ).rowcount
    return after if n >= limit else None


# A condition on a `premium_services` row: removed, and named by no vote (a money record or a correction).
_GONE_SERVICE = (
    "removed_at IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM premium_mo p WHERE p.service_id = premium_services.id)"
    " AND NOT EXISTS (SELECT 1 FROM premium_corrections c WHERE c.service_id = premium_services.id)"
)


def account_holds(conn: sqlite3.Connection, account_id: int) -> list[str]:
    """What of the premium rows keeps an account from `account remove` (`gateway.store.accountshares`):
    a service live or with votes, and the votes. A service removed before any vote named it holds
    nothing: added by mistake and removed, it kept the account while `premium list` showed none."""
    service = f"SELECT 1 FROM premium_services WHERE account_id = ? AND NOT ({_GONE_SERVICE}) LIMIT 1"
    vote = "SELECT 1 FROM premium_mo WHERE account_id = ? LIMIT 1"
    return [
        what
        for sql, what in ((service, "premium services"), (vote, "premium votes"))
        if conn.execute(sql, (account_id,)).fetchone()
    ]


def delete_gone_services(conn: sqlite3.Connection, account_id: int) -> None:
    """In the account's removal, once nothing holds it: its services that hold nothing, with their
    reply lists and confirmation tokens."""
    gone = f"SELECT id FROM premium_services WHERE account_id = ? AND {_GONE_SERVICE}"
    for table in ("premium_reply_acl", "premium_verifications"):
        conn.execute(f"DELETE FROM {table} WHERE service_id IN ({gone})", (account_id,))
    conn.execute(f"DELETE FROM premium_services WHERE account_id = ? AND {_GONE_SERVICE}", (account_id,))
