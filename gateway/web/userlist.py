"""The users page's list: a page of an account's users at a time, read on the panel's reader thread.

The page listed every user of the account, each with a row of forms (~3 KB): an account of 3,017
users made an 8.9 MB page, read and rendered on the loop in 390 ms a load, and SMTP sessions waited
for it (p99 541 ms while it was paged). It now shows `SHOWN` users, in address order as before, and
pages by address as the message search pages by id: `after` is the last address shown, `before` the
first, so a page deep in the list is one walk of the address index from its cursor, as the first is.

The filter (`address`) keeps the users whose address contains the text typed, ASCII letters either
case (SQLite's lower(), on both sides). It reads the users table, not an index of it: the walk in
address order stops at a page of matches, and at worst reads the installation's users (thousands of
short rows, a few milliseconds) on the reader thread, never on the loop.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.store.accounts import USER_COLUMNS, USERS_FROM, User
from gateway.web.messages import BadQuery
from gateway.web.repo import PAGE

SHOWN = PAGE  # users a page: the message search's page (a user's row of forms is ~3 KB)
TYPED_MAX = 254  # an address's longest (RFC 5321): a cursor or a filter past it is no address


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[User]
    total: int  # the account's users
    found: int  # of them, those the filter keeps (all without one)
    earlier: bool  # a page before this one
    later: bool  # a page after it
    accounts: list[str]  # every account's name, for the operator's links to their users; else none


def typed(value: str | None, name: str) -> str | None:
    """A cursor or the filter from the query: none when empty; BadQuery past an address's length."""
    if not value:
        return None
    if len(value) > TYPED_MAX:
        raise BadQuery(f"{name}: {value[:40]!r}… is longer than an address ({TYPED_MAX} characters)")
    return value


def user_page(
    conn: sqlite3.Connection,
    account_id: int,
    *,
    text: str | None = None,
    after: str | None = None,
    before: str | None = None,
    limit: int = SHOWN,
    names: bool = False,
) -> UserPage:
    """The users after `after` (or before `before`), `limit` of them, in address order. `u.email`
    compares as its column does (NOCASE), so the cursors order as the list. `names`: with the
    accounts' names (the operator's), one query: the store's list of accounts reads each one's
    networks too, a query an account (300 of them on every load of the page, on the loop)."""
    where: list[str] = ["u.account_id = ?"]
    args: list[object] = [account_id]
    if text:
        where.append("instr(lower(u.email), lower(?)) > 0")
        args.append(text)

    def read(cursor: str, value: str | None, order: str, n: int) -> list[User]:
        terms, params = (where, args) if value is None else ([*where, f"u.email {cursor} ?"], [*args, value])
        sql = f"SELECT {USER_COLUMNS} FROM {USERS_FROM} WHERE {' AND '.join(terms)} ORDER BY u.email {order}"
        cur = conn.execute(sql + " LIMIT ?", (*params, n))
        return [User(*r) for r in cur]

    if before is not None:
        rows = read("<", before, "DESC", limit + 1)
        earlier, rows = len(rows) > limit, rows[:limit][::-1]
        if not earlier and len(rows) < limit:  # users removed meanwhile: the first page, full
            return user_page(conn, account_id, text=text, limit=limit, names=names)
        later = bool(read(">", rows[-1].email if rows else before, "ASC", 1))
    else:
        rows = read(">", after, "ASC", limit + 1)
        later, rows = len(rows) > limit, rows[:limit]
        if not rows and after is not None:  # past the end (its last users removed): the last page
            rows = read("<=", after, "DESC", limit + 1)
            rows, later = rows[:limit][::-1], False
        earlier = after is not None and bool(rows) and bool(read("<", rows[0].email, "DESC", 1))
    total, found = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(instr(lower(email), lower(?)) > 0), 0) FROM users"
        " WHERE account_id = ?",
        (text or "", account_id),
    ).fetchone()
    listed = [r[0] for r in conn.execute("SELECT name FROM accounts ORDER BY name")] if names else []
    return UserPage(rows, total, found, earlier, later, listed)
