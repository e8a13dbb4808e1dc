"""The panel's repository: message search and detail, dashboard counts, opt-outs, the audit trail.

Every listing takes the account it is scoped to (`None` only for the operator), so that a handler
cannot forget the scope: it is an argument, not a WHERE clause added afterwards. The message
search and the opt-outs page by id (keyset) so that page 1000 costs what page 1 costs on a million
rows. The store runs no ANALYZE, so SQLite plans without statistics: each account-scoped query
here says which index drives it (see WROTE_TO, and BULK_STATES in `gateway.store.mailrecord`, where
the search and the message page's reader live, shared with the CLI), and tests/test_web_limits.py
checks the plans on a fresh store.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store import audit
from gateway.store.admin import QUIET_HELD
from gateway.store.mailrecord import message_detail, search_messages
from gateway.store.repository import Repository

PAGE = 50
OPTOUT_PAGE = 100
# An account's messages to one number, by the recipient index. Without statistics SQLite prefers the
# account's index (account_id = ? looks as selective as recipient = ?) and reads every message of
# the account for each number: 11 s for an account page listing 3,000 opt-outs at 100k messages.
WROTE_TO = (
    "SELECT 1 FROM messages m INDEXED BY messages_recipient_id WHERE m.recipient = {number}"
    " AND m.account_id = ?"
)


def _rows(cur: Any) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# The lowest message id of the day's mails: its first mail by index emails_received, and that mail's
# first message, the first entry of messages_email from it (a mail's messages are written with it,
# after every earlier mail's: MIN(id) there read each of the day's entries). The lowest mail id, not
# the earliest time's: after a step back of the clock a mail with an earlier time follows the day's
# first ones, whose messages were then left out.
_FIRST_OF_DAY = (
    "SELECT COALESCE((SELECT id FROM messages INDEXED BY messages_email WHERE email_id >="
    " (SELECT MIN(id) FROM emails INDEXED BY emails_received WHERE received_at >= :since)"
    " ORDER BY email_id, id LIMIT 1), 1 << 62)"
)
# Each state the index holds, one seek each (a skip-scan): no list of states to keep in step.
_STATES = (
    "WITH RECURSIVE s(state) AS (SELECT MIN(state) FROM messages INDEXED BY {index} WHERE {scope}"
    " UNION ALL SELECT (SELECT MIN(state) FROM messages INDEXED BY {index} WHERE {scope} AND state > s.state)"
    " FROM s WHERE s.state IS NOT NULL)"
    " SELECT s.state, (SELECT COUNT(*) FROM messages m INDEXED BY {index} WHERE {scope} AND m.state = s.state"
    " AND m.id >= :first) FROM s WHERE s.state IS NOT NULL"
)
_OPERATOR_STATES = _STATES.format(index="messages_state", scope="1")
# messages_counts is partial (id > 0): the term is written out for SQLite to take the index.
_ACCOUNT_STATES = _STATES.format(index="messages_counts", scope="account_id = :account AND id > 0")


def states_since(conn: sqlite3.Connection, account_id: int | None, since: float) -> dict[str, int]:
    """Messages by state of the mails received since `since`, on the reader's thread (the dashboard's
    "today"): from the first message of the day's first mail on (ids grow with time), counted in an
    index of (state, id) state by state (messages_state; an account's, messages_counts).

    By `created_at` alone it read every message kept (0.7 s at two million); from the day's first
    message on it still read each of the day's messages whole, text and all, for its state: 49 ms at
    100,000 a day (an account's by messages_billing, 8 ms), growing through the day at each load of
    the dashboard and holding the panel's one reader thread, every search and export behind it. An
    index entry is a state and an id: 9 ms (6 ms), most of it finding the day's first mail. A
    message's own time is no longer read: one of the day's mails whose time a step back of the clock
    moved before `since` counts in the day its mail was received."""
    first = int(conn.execute(_FIRST_OF_DAY, {"since": since}).fetchone()[0])
    if account_id is None:
        rows = conn.execute(_OPERATOR_STATES, {"first": first}).fetchall()
    else:
        rows = conn.execute(_ACCOUNT_STATES, {"first": first, "account": account_id}).fetchall()
    return {state: n for state, n in rows if n}


def needing_attention(
    conn: sqlite3.Connection, account_id: int | None, limit: int = 20, *, now: float | None = None
) -> list[Any]:
    """Held and expired messages: someone has to retry or cancel them (the dashboard, off the loop).
    With `now`, then those held for quiet hours, with their release time (`held_until`): queued,
    they were in no list but the whole search, and an admin asking why a bulk SMS had not gone
    found nothing there."""
    found = []
    for state in ("hold", "expired"):
        found += search_messages(conn, account_id, state=state, limit=limit)
    return found if now is None else found + quiet_held(conn, account_id, now, limit)


def quiet_held(conn: sqlite3.Connection, account_id: int | None, now: float, limit: int) -> list[Any]:
    """Messages held for quiet hours, newest first: found from their parts by index parts_due
    (queued and due after now: few parts but these), not by reading the account's messages."""
    scope, args = ("", ()) if account_id is None else (" AND m.account_id = ?", (account_id,))
    return _rows(
        conn.execute(
            "SELECT m.id, m.created_at, m.recipient, m.state, m.parts_total, m.reason, e.mail_from,"
            " a.name AS account, MIN(p.next_attempt_at) AS held_until FROM parts p"
            " JOIN messages m ON m.id = p.message_id JOIN emails e ON e.id = m.email_id"
            f" LEFT JOIN accounts a ON a.id = m.account_id WHERE {QUIET_HELD} AND m.state = 'queued'{scope}"
            " GROUP BY m.id ORDER BY m.id DESC LIMIT ?",
            (now, *args, limit),
        )
    )


def optouts_page(
    conn: sqlite3.Connection,
    account_id: int | None,
    *,
    before: int | None = None,
    number: str | None = None,
    limit: int = OPTOUT_PAGE,
) -> list[dict[str, Any]]:
    """Opt-outs, newest first, paged by rowid (`before`: the last `id` of the previous page); with
    `number`, that number's entry only. With `account_id`, those of numbers the account has written
    to and those its admins added (found in the audit trail, which records the account of every
    panel change): the list is shared, the view is not.

    By rowid, the order they were added in, so that a page reads only as many opt-outs as it shows
    (and, for an account, those it skips), never the whole list sorted. A function of the
    connection, for the reader's thread: an account with few of a long list's numbers still reads
    the whole list (one recipient-index probe each) to fill its page."""
    where, args = [], []
    if account_id is not None:
        where.append(
            f"(EXISTS ({WROTE_TO.format(number='o.number')}) OR o.number IN"
            " (SELECT detail FROM audit WHERE account_id = ? AND action = 'optout.add'))"
        )
        args += [account_id, account_id]
    if before is not None:
        where.append("o.rowid < ?")
        args.append(before)
    if number is not None:
        where.append("o.number = ?")
        args.append(number)
    sql = "SELECT o.rowid AS id, o.number, o.word, o.source, o.created_at FROM optouts o"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return _rows(conn.execute(sql + " ORDER BY o.rowid DESC LIMIT ?", (*args, limit)))


class PanelRepo(Repository):
    def search_messages(self, account_id: int | None, **filters: Any) -> list[dict[str, Any]]:
        return search_messages(self.conn, account_id, **filters)

    def message_detail(self, message_id: int) -> dict[str, Any] | None:
        return message_detail(self.conn, message_id, self.clock())

    def wrote_to(self, account_id: int, number: str) -> bool:
        """Whether the account has sent an SMS to `number` (the recipient index, see WROTE_TO)."""
        sql = WROTE_TO.format(number="?") + " LIMIT 1"
        return self.conn.execute(sql, (number, account_id)).fetchone() is not None

    def audit(self, actor: str, account_id: int | None, action: str, detail: str = "") -> None:
        with self.transaction():
            audit.record(self.conn, self.clock(), actor, account_id, action, detail)

    def audit_log(self, account_id: int | None, limit: int = 100) -> list[dict[str, Any]]:
        return audit.trail(self.conn, account_id=account_id, limit=limit)
