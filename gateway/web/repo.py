"""The panel's repository: message search and detail, dashboard counts, the audit trail, metrics counts.

Every listing takes the account it is scoped to (`None` only for the operator), so that a handler
cannot forget the scope: it is an argument, not a WHERE clause added afterwards. The message
search pages by id (keyset) so that page 1000 costs what page 1 costs on a million rows.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.repository import Repository

PAGE = 50
FINAL_STATES = ("submitted", "delivered", "failed", "expired", "cancelled")


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
    limit: int = PAGE,
) -> list[dict[str, Any]]:
    """Newest first; `before_id` is the last id of the previous page. A function of the connection:
    the CSV export pages through it on the reader's thread (gateway/web/counts.py)."""
    where, args = [], []
    for cond, value in (
        ("m.account_id = ?", account_id),
        ("m.recipient = ?", number),
        ("e.mail_from = ? COLLATE NOCASE", user),
        ("m.created_at >= ?", since),
        ("m.created_at < ?", until),
        ("m.state = ?", state),
        ("m.id < ?", before_id),
    ):
        if value is not None:
            where.append(cond)
            args.append(value)
    sql = (
        "SELECT m.id, m.created_at, m.recipient, m.state, m.parts_total, m.reason, e.mail_from,"
        " a.name AS account FROM messages m JOIN emails e ON e.id = m.email_id"
        " LEFT JOIN accounts a ON a.id = m.account_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    return _rows(conn.execute(sql + " ORDER BY m.id DESC LIMIT ?", (*args, limit)))


def states_since(conn: sqlite3.Connection, account_id: int | None, since: float) -> dict[str, int]:
    """Messages by state created since `since`: for the operator a scan of every message (a third
    of a second at a million), so the dashboard runs it on the reader's thread, never the loop's."""
    sql = "SELECT state, COUNT(*) FROM messages WHERE created_at >= ?"
    args: list[Any] = [since]
    if account_id is not None:
        sql += " AND account_id = ?"
        args.append(account_id)
    return dict(conn.execute(sql + " GROUP BY state", args).fetchall())


class PanelRepo(Repository):
    def search_messages(self, account_id: int | None, **filters: Any) -> list[dict[str, Any]]:
        return search_messages(self.conn, account_id, **filters)

    def message_detail(self, message_id: int) -> dict[str, Any] | None:
        cur = self.conn.execute(
            "SELECT m.id, m.account_id, a.name AS account, m.recipient, m.source, m.text, m.parts_total,"
            " m.state, m.reason, m.created_at, m.expires_at, m.finished_at, e.mail_from, e.client_ip,"
            " e.subject, e.header_message_id FROM messages m JOIN emails e ON e.id = m.email_id"
            " LEFT JOIN accounts a ON a.id = m.account_id WHERE m.id = ?",
            (message_id,),
        )
        found = _rows(cur)
        if not found:
            return None
        msg = found[0]
        msg["parts"] = _rows(
            self.conn.execute(
                "SELECT id, seq, state, attempts, link, smsc_id, submitted_at, done_at, error, text"
                " FROM parts WHERE message_id = ? ORDER BY seq",
                (message_id,),
            )
        )
        msg["dlrs"] = _rows(
            self.conn.execute(
                "SELECT d.received_at, d.link, d.smsc_id, d.status, d.error, p.seq FROM dlrs d"
                " JOIN parts p ON p.id = d.part_id WHERE p.message_id = ? ORDER BY d.id",
                (message_id,),
            )
        )
        msg["mails"] = _rows(
            self.conn.execute(
                "SELECT kind, rcpt, state, created_at, sent_at FROM outbox WHERE message_ref = ? ORDER BY id",
                (message_id,),
            )
        )
        return msg

    def needing_attention(self, account_id: int | None, limit: int = 20) -> list[dict[str, Any]]:
        """Held and expired messages: someone has to retry or cancel them."""
        return [
            m
            for state in ("hold", "expired")
            for m in self.search_messages(account_id, state=state, limit=limit)
        ]

    def wrote_to(self, account_id: int, number: str) -> bool:
        """Whether the account has sent an SMS to `number` (the recipient index, newest first)."""
        row = self.conn.execute(
            "SELECT 1 FROM messages WHERE recipient = ? AND account_id = ? LIMIT 1", (number, account_id)
        ).fetchone()
        return row is not None

    def optouts_for_account(self, account_id: int) -> list[dict[str, Any]]:
        """Opt-outs of numbers this account has written to, and those its admins added (found in the
        audit trail, which records the account of every panel change): the list is shared, the view
        is not."""
        return _rows(
            self.conn.execute(
                "SELECT o.number, o.word, o.source, o.created_at FROM optouts o WHERE EXISTS"
                " (SELECT 1 FROM messages m WHERE m.recipient = o.number AND m.account_id = ?)"
                " OR o.number IN (SELECT detail FROM audit WHERE account_id = ? AND action = 'optout.add')"
                " ORDER BY o.created_at",
                (account_id, account_id),
            )
        )

    def premium_figures(
        self, start: float, end: float, account_id: int | None
    ) -> list[tuple[str | None, bool, str, int, int, int, int]]:
        """(password or None, removed, number, MOs, parts, price, commission) for premium MOs in
        [start, end), per service rather than per password: a removed service keeps its money apart
        from the one that took its password later. With `account_id`, only that account's MOs."""
        scope, args = ("", ()) if account_id is None else (" AND p.account_id = ?", (account_id,))
        return [
            (r[0], r[1] is not None, r[2], r[3], r[4] or 0, r[5] or 0, r[6] or 0)
            for r in self.conn.execute(
                # The late parts of an SMS (`mo.follows`) add parts and money, not an SMS.
                "SELECT s.password, s.removed_at, p.number, COUNT(*) FILTER (WHERE l.follows IS NULL),"
                " SUM(p.parts), SUM(p.price), SUM(p.commission) FROM premium_mo p"
                " LEFT JOIN premium_services s ON s.id = p.service_id LEFT JOIN mo l ON l.id = p.mo_id"
                f" WHERE p.received_at >= ? AND p.received_at < ?{scope}"
                " GROUP BY p.service_id, p.number"
                " ORDER BY s.password IS NULL, s.password, s.removed_at IS NULL, p.number",
                (start, end, *args),
            )
        ]

    def audit(self, actor: str, account_id: int | None, action: str, detail: str = "") -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO audit (at, actor, account_id, action, detail) VALUES (?, ?, ?, ?, ?)",
                (self.clock(), actor, account_id, action, detail),
            )

    def audit_log(self, account_id: int | None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT at, actor, account_id, action, detail FROM audit"
        args: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = ?"
            args = (account_id,)
        return _rows(self.conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)))
