"""The billing repository: the SQL that reads a month of an account's traffic, and the billing state.

Reads run on a connection of their own (`open_reader`), never on the daemon's: a month of a large
account takes seconds to read, which must not hold the event loop nor the connection that answers
SMTP. Cursors are returned unconsumed, so callers stream rows instead of loading a month. Every
query is served by an index in time order (migrations 8 and 17), so no sort is ever spilled to memory;
replies and premium MOs are put in the order of when their phone sent them on the way, a day's rows
at most held.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

from gateway.premium.queries import answer_join
from gateway.store.moparts import COUNTED, COUNTED_WIDTH, counted
from gateway.store.repository import Repository

LAST_BILLED = "last_billed"
PURGED_BEFORE = "purged_before"


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection of our own to the store (WAL lets it read while the daemon writes).

    Opened `mode=ro`, not merely query_only: a connection that may write checkpoints and deletes the
    WAL when it closes last, which after a crash would leave the WAL's flag with no WAL and the next
    start refused (`gateway.store.walcheck`), as for `smsgw backup`."""
    uri = f"file:{pathname2url(str(path.absolute()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def accounts(conn: sqlite3.Connection, before: float, name: str | None = None) -> list[tuple[int, str]]:
    """(id, name) of the accounts that existed before `before`, by name."""
    sql = "SELECT id, name FROM accounts WHERE created_at < ?"
    args: tuple[Any, ...] = (before,)
    if name is not None:
        sql += " AND name = ?"
        args += (name,)
    return conn.execute(sql + " ORDER BY name", args).fetchall()


def mt_rows(conn: sqlite3.Connection, account_id: int, start: float, end: float) -> Iterator[tuple[Any, ...]]:
    """Messages (SMS to phones) of the account; a free premium answer carries its answer's id."""
    return conn.execute(
        # The user as the ACL has them (one person, however they typed their address); a user since
        # removed, or a premium client's answer, has no ACL entry: the address in lower case.
        "SELECT m.created_at, m.id, COALESCE(u.email, lower(e.mail_from)), m.source, m.recipient,"
        " m.parts_total,"
        " m.state, m.reason, pa.id, m.finished_at FROM messages m INDEXED BY messages_billing"
        " JOIN emails e ON e.id = m.email_id"
        " LEFT JOIN users u ON u.id = e.user_id"
        f"{answer_join('m', 'pa')}"
        " WHERE m.account_id = ? AND m.created_at >= ? AND m.created_at < ?"
        " ORDER BY m.created_at, m.id",
        (account_id, start, end),
    )


def reply_rows(
    conn: sqlite3.Connection, account_id: int, start: float, end: float
) -> Iterator[tuple[Any, ...]]:
    """Whole MOs that answered one of the account's SMS (two-way replies, R-3), by when the phone
    sent them (`billed_at`).

    By the account kept on the MO when it was matched (migration 17), not the conversation's: that
    one follows the user's latest SMS, and a user moved to another account would take the answers
    billed before along. Whether a conversation took the MO (its mail went to the user) tells a
    copy at the fallback address of an answer the user's mail server refused from one sent there
    because no user was left to take it (`monthly.reply_status`).
    """
    rows = conn.execute(
        f"SELECT {billed_at('mo')}, mo.id, mo.source, mo.destination, {COUNTED}, mo.state, mo.note,"
        f" mo.conversation_id IS NOT NULL, {billed_at('f')}, mo.received_at"
        " FROM mo INDEXED BY mo_billing LEFT JOIN mo f ON f.id = mo.follows"
        " WHERE mo.account_id = ? AND mo.received_at >= ? AND mo.received_at < ?"
        " AND mo.state NOT IN ('segment', 'joined', 'duplicate')"
        " ORDER BY mo.received_at, mo.id",
        (account_id, start, end + PARTS_BOUND_SECONDS),
    )
    return in_billed_order(_with_parts(rows), start, end)


def _with_parts(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Rows with the `COUNTED` columns (from the fifth) made their count of parts, by the rule a
    premium vote is billed by (`gateway.store.moparts.counted`), not a copy of it in SQL: that one
    counted a long SMS the SMSC delivered joined (no concatenation) as one part, where the phone's
    split, and the vote's bill, counted two."""
    end = 4 + COUNTED_WIDTH
    for row in rows:
        yield (*row[:4], counted(*row[4:end]), *row[end:])


# How long after its first part a long MO may be joined and still go by that part's time: a day, the
# longest `[replies] reassembly_timeout_seconds` takes. The whole MO's row is stamped with its join
# (`received_at`, which conversations, retention and the panel read); `parts_at` keeps when its first
# part came (NULL for a single SMS and rows from before migration 33). A 2-part SMS sent at 23:59:58
# on the 31st and joined at 00:00:03, or by the timeout at 00:02:30, is an SMS of the month its phone
# sent it in, and a late part's line names that time, as the client's mail does. One joined
# longer after (its parts kept coming, the daemon was down for a day) goes by its join, as before:
# every MO is in exactly one month, and a month's rows are still read by `received_at` on its index,
# in [start, end + the bound), since the time billed is never earlier than that (`in_billed_order`).
# `run_due` holds a month's scheduled run while a part from its last day still waits to be joined.
# Premium MOs go by the same rule (`gateway.premium.billrows`, `premium stats`, corrections' month in
# `gateway.premium.corrections`), on the `parts_at` their money record keeps (migration 60): the
# purge deletes the row of table mo and keeps that record, and a month's premium lines and figures
# must read the same after it.
PARTS_BOUND_SECONDS = 86400.0


def billed_at(alias: str) -> str:
    """SQL: the time an MO of table mo or premium_mo (`alias`, both keep `parts_at` and
    `received_at`) is billed by: its first part's if within the bound, else its join. The one rule
    for every reader, so that a reply, a vote and its corrections are in the same month."""
    return (
        f"CASE WHEN {alias}.parts_at >= {alias}.received_at - {PARTS_BOUND_SECONDS}"
        f" THEN {alias}.parts_at ELSE {alias}.received_at END"
    )


def in_billed_order(rows: Iterable[tuple[Any, ...]], start: float, end: float) -> Iterator[tuple[Any, ...]]:
    """Rows read in `received_at` order (last column), billed time first, as (billed time, id) orders
    them, only those billed in [start, end), without the last column. The billed time is never more
    than the bound before `received_at`, so a row is held only until one received a bound after it
    came: the months' streams are merged in time order (`monthly.lines`) with no sort of a month."""
    held: list[tuple[float, int, tuple[Any, ...]]] = []
    for row in rows:
        while held and held[0][0] < row[-1] - PARTS_BOUND_SECONDS:
            yield heapq.heappop(held)[2]
        if start <= row[0] < end:
            heapq.heappush(held, (row[0], row[1], row[:-1]))
    while held:
        yield heapq.heappop(held)[2]


def parts_waiting(conn: sqlite3.Connection, end: float) -> bool:
    """Whether a part of a long MO that came in the bound before `end` still waits to be joined: a
    reply or premium vote made of it is billed in the month that ends at `end` (`billed_at`), so that
    month's bill waits for it, or it would be in no month's mail."""
    row = conn.execute(
        "SELECT 1 FROM mo INDEXED BY mo_received WHERE received_at >= ? AND received_at < ?"
        " AND state = 'segment' LIMIT 1",
        (end - PARTS_BOUND_SECONDS, end),
    ).fetchone()
    return row is not None


def mailed_key(month: object, what: object) -> str:
    """The billing state key that records a file of `month` queued for mail (`what`: the account's
    id, or "summary"); its value is the mark `<sha256 of the file> <unix time>`."""
    return f"mailed/{month}/{what}"


def mark_parts(mark: str) -> tuple[str, float | None]:
    """A mark's sha256 and when its mail was queued (marks written before that was kept say nothing)."""
    parts = mark.split()
    try:
        return parts[0], float(parts[1]) if len(parts) > 1 else None
    except ValueError:
        return parts[0], None


def billed(conn: sqlite3.Connection, month: str) -> bool:
    """The month's bill went out: recorded billed by the scheduled run, or a file of it mailed by
    `billing run --send`. Who is paid for its SMS must not change any more."""
    last = state(conn, LAST_BILLED)
    if last is not None and last >= month:
        return True
    prefix = mailed_key(month, "")
    row = conn.execute(
        "SELECT 1 FROM billing_state WHERE key >= ? AND key < ? LIMIT 1", (prefix, prefix[:-1] + "0")
    ).fetchone()
    return row is not None


def usage_parts(conn: sqlite3.Connection, account_id: int, month: str) -> int:
    """SMS parts the account was charged at acceptance in `month`: a counter the purge never deletes."""
    row = conn.execute(
        "SELECT parts FROM usage WHERE scope = ? AND period = ?", (f"account:{account_id}", month)
    ).fetchone()
    return int(row[0]) if row else 0


def installed_at(conn: sqlite3.Connection) -> float | None:
    """When the first account was made: a month before it is billed only if it had traffic
    (`monthly.due_months`), and a clock stepped back bills no month before it or the first traffic
    again (`rebill`)."""
    row = conn.execute("SELECT MIN(created_at) FROM accounts").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def first_use(conn: sqlite3.Connection) -> float | None:
    """When the first SMS was accepted or the first MO received (the oldest rows, by id, are the
    first written): the first month with anything to bill."""
    row = conn.execute(
        "SELECT MIN(t) FROM (SELECT (SELECT created_at FROM messages ORDER BY id LIMIT 1) AS t"
        " UNION ALL SELECT (SELECT received_at FROM mo ORDER BY id LIMIT 1))"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def state(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


class BillingRepo(Repository):
    """The billing state on the store's own connection (writes go through the daemon's `write()`)."""

    def get(self, key: str) -> str | None:
        return state(self.conn, key)

    def installed_at(self) -> float | None:
        return installed_at(self.conn)

    def first_use(self) -> float | None:
        return first_use(self.conn)

    def put(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO billing_state (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def bill_answer(self, mo_id: int, account_id: int) -> None:
        """Bill an answer no conversation took to the account whose SMS it answers: its user was
        removed, moved to another account, or the address added again since (`gone`), so the phone's
        answer goes to the fallback or an inbound address, yet it answers that account's SMS on that
        account's number and is its traffic (R-5.2: every SMS of the account's month). After
        `ConversationsRepo.settle_mo`, in the MO's write: that one bills only a conversation's answer."""
        with self.transaction():
            self.conn.execute("UPDATE mo SET account_id = ? WHERE id = ?", (account_id, mo_id))

    def purged_up_to(self, cutoff: float) -> None:
        """The retention purge deleted detail rows older than `cutoff`; the mark only moves forward."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO billing_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                " SET value = excluded.value WHERE CAST(excluded.value AS REAL) > CAST(value AS REAL)",
                (PURGED_BEFORE, repr(float(cutoff))),
            )


def clashing_names(conn: sqlite3.Connection) -> frozenset[str]:
    """The accounts' names another account's name differs from in case only (`ACME` and `acme`),
    read once for a month's mails: read per account, each read scanned every account (a month's
    run on the loop growing with the square of their number)."""
    rows = conn.execute(
        "SELECT name FROM accounts WHERE lower(name) IN"
        " (SELECT lower(name) FROM accounts GROUP BY 1 HAVING COUNT(*) > 1)"
    )
    return frozenset(r[0] for r in rows)
