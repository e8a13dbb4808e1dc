"""The audit trail of changes (R-2.5): who changed what, when, for the panel and the command line alike.

One insert for both writers, so that a row reads the same whoever made the change and a listing
shows them side by side; and one listing, for the panel's operator page and `smsgw audit`. The
insert never commits on its own: it joins the caller's transaction, so that a change and its row
are written together or not at all. A `detail` never holds a password, a hash or a token.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def record(
    conn: sqlite3.Connection, at: float, actor: str, account_id: int | None, action: str, detail: str = ""
) -> None:
    """One change's row; `account_id` None for what concerns the installation (or an account gone)."""
    conn.execute(
        "INSERT INTO audit (at, actor, account_id, action, detail) VALUES (?, ?, ?, ?, ?)",
        (at, actor, account_id, action, detail),
    )


def trail(
    conn: sqlite3.Connection,
    *,
    account_id: int | None = None,
    since: float | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Rows newest first, with the account's name (None once it is removed, or for none).

    By id, the order they were written in, read backwards until `limit` rows matched: for an
    account by its index audit_account, and `since` by audit_at (the rows since then, however
    long the trail), so that no listing reads the whole trail to find a few rows. `actor` matches
    any part of the actor, case aside (`anna` finds `anna@acme.pl` and `cli:root (sudo by anna)`).
    """
    where, args = [], []
    if account_id is not None:
        where.append("t.account_id = ?")
        args.append(account_id)
    if since is not None:
        where.append("t.at >= ?")
        args.append(since)
    if actor:
        where.append("instr(lower(t.actor), lower(?)) > 0")
        args.append(actor)
    index = "audit_account" if account_id is not None else "audit_at" if since is not None else None
    sql = (
        "SELECT t.id, t.at, t.actor, t.account_id, a.name AS account, t.action, t.detail FROM audit t"
        + (f" INDEXED BY {index}" if index else "")
        + " LEFT JOIN accounts a ON a.id = t.account_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    cur = conn.execute(sql + " ORDER BY t.id DESC LIMIT ?", (*args, limit))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
