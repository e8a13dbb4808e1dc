"""What the database holds about one phone number (GDPR art. 15, `smsgw phone show`): each kind of
row about it, counted and listed, and what stops its erasure (`waiting`).
"""

from __future__ import annotations

import json
from typing import Any

from gateway.conversations import queries as conversations
from gateway.premium import queries as premium
from gateway.privacy.found import PhoneMails
from gateway.privacy.naming import ERASED
from gateway.privacy.rows import dict_rows, marks

# The parts of an SMS not sent yet: erasing them would send the marker, or a text the dispatcher
# has in hand; the admin cancels them first (`smsgw queue cancel`).
WAITING = ("queued", "deferred", "hold", "active")


class PhoneHoldings(PhoneMails):
    """The phone's rows as `phone show` lists them, and as `phone forget` says what it would erase."""

    def _sent_sql(self) -> tuple[str, tuple[object, ...]]:
        return (
            "SELECT m.id, m.created_at, a.name AS account, e.mail_from, m.source, m.state, m.parts_total,"
            " m.text FROM messages m LEFT JOIN accounts a ON a.id = m.account_id"
            " LEFT JOIN emails e ON e.id = m.email_id WHERE m.recipient = ?",
            (self.number,),
        )

    def _mails_sql(self) -> tuple[str, tuple[object, ...]]:
        whole, replaced, _, _ = self._split()
        return (
            "SELECT id, created_at, kind, rcpt, state FROM outbox"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(whole + replaced),),
        )

    def _listed(self, query: tuple[str, tuple[object, ...]], order: str, limit: int) -> dict[str, Any]:
        sql, args = query
        rows = dict_rows(self.conn.execute(f"{sql} ORDER BY {order} DESC LIMIT ?", (*args, limit)))
        return {"count": self.count(sql, args), "rows": rows}

    def holdings(self, limit: int) -> dict[str, Any]:
        """Each kind of row about the phone: its count, and up to `limit` of them newest first."""
        n = self.number
        kept = self._one("SELECT COUNT(*) FROM mo WHERE source = ? AND state = 'throttled'", n)
        optout = self.conn.execute(
            "SELECT word, source, created_at FROM optouts WHERE number = ?", (self.number,)
        ).fetchone()
        return {
            "sent": self._listed(self._sent_sql(), "m.id", limit),
            "received": self._listed(conversations.answers_from(n), "o.id", limit),
            "premium": self._listed(premium.phone_votes(n), "id", limit),
            "conversations": conversations.phone_conversations(self.conn, n),
            "optout": None if optout is None else dict(zip(("word", "source", "at"), optout, strict=True)),
            "kept": {
                "answers": int(kept),
                "state": conversations.kept_state(self.conn, n),
            },
            "segments": self._one("SELECT COUNT(*) FROM mo WHERE source = ? AND state = 'segment'", n),
            "awaiting": premium.awaiting_from(self.conn, n),
            "mails": self._listed(self._mails_sql(), "id", limit),
            "reports_unmatched": self.count(*self._unmatched_sql()),
            "records": self._records_held(),
        }

    def _records_held(self) -> dict[str, int]:
        """The records of mails never sent that the erasure changes: erased whole, or the number only."""
        _, _, whole, shared = self._split()
        erased = json.dumps(whole + shared)
        # One erased already names the phone no more but by what the outbox says of it: not counted.
        left = {
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM emails WHERE id IN (SELECT value FROM json_each(?)) AND text <> ?",
                (erased, ERASED),
            )
        }
        return {"whole": len(left & set(whole)), "number": len(left & set(shared))}

    def waiting(self) -> list[tuple[int, str]]:
        """The SMS to the phone with a part not sent yet: (message id, the part's state)."""
        return [
            (int(r[0]), str(r[1]))
            for r in self.conn.execute(
                "SELECT m.id, MIN(p.state) FROM messages m JOIN parts p ON p.message_id = m.id"
                f" WHERE m.recipient = ? AND p.state IN ({marks(WAITING)}) GROUP BY m.id ORDER BY m.id",
                (self.number, *WAITING),
            )
        ]
