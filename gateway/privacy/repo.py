"""What the database holds about one phone number, and the erasure of its texts.

A text the phone sent or was sent lives in more than one column: the SMS (`messages.text`), each
of its parts (`parts.text` and the encoded `parts.payload`), the delivery report as the SMSC wrote
it (`dlrs.raw`, whose SMPP form quotes the text's start), the mail it came in (`emails.text`,
`subject`), an answer (`mo.text`), a premium SMS and the free answers to it (`premium_mo.text`,
`premium_answers.text`), a conversation's last text, and every mail the gateway wrote about it
(`outbox.content`: reports, answers forwarded). All of them are found here, by one number.

What the law lets or obliges the operator to keep stays: the billing facts (number, time, parts,
price, state) and the opt-out entry, which is how the phone's objection is honoured. A mail's own
text is its sender's, and the mail may have gone to other numbers too: it is erased only when every
SMS it became went to this number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

ERASED = "[erased at the phone's request]"
# The parts of an SMS not sent yet: erasing them would send the marker, or a text the dispatcher
# has in hand; the admin cancels them first (`smsgw queue cancel`).
WAITING = ("queued", "deferred", "hold", "active")
# A queued mail about the phone is not sent once its text is erased; why, as `outbox list` shows it.
NOT_SENT = "not sent: its text was erased at the phone's request"
KEPT_NOTE = "kept past the hourly limit; erased at the phone's request before it was mailed"


class Erased(NamedTuple):
    """How many rows of each kind the erasure changed."""

    sms_sent: int
    sms_parts: int
    reports: int
    sms_received: int
    premium_sms: int
    premium_answers: int
    mails_erased: int  # the mails the SMS came in, all of whose SMS went to this number
    mails_kept: int  # those that also went to other numbers: their sender's text stays
    conversations: int
    kept_answers: int  # its answers kept past the hourly limit, not mailed now
    outbox_mails: int
    outbox_not_sent: int  # of them, still queued: not sent now


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


class PhoneRepo:
    """One phone's rows. `number` is its E.164 form (how the gateway stores the numbers it sends
    to, its conversations and opt-outs); `forms` every form an SMSC may have written it in (what
    the rows of SMS received from it keep)."""

    def __init__(self, conn: sqlite3.Connection, number: str, forms: Sequence[str]) -> None:
        self.conn = conn
        self.number = number
        self.forms = tuple(dict.fromkeys([number, *forms]))
        self._in = f"IN ({_marks(self.forms)})"

    # ---- the reads (art. 15) --------------------------------------------------------------------

    def count(self, sql: str, args: Sequence[object]) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM ({sql})", tuple(args)).fetchone()[0])

    def _sent_sql(self) -> tuple[str, tuple[object, ...]]:
        return (
            "SELECT m.id, m.created_at, a.name AS account, e.mail_from, m.source, m.state, m.parts_total,"
            " m.text FROM messages m LEFT JOIN accounts a ON a.id = m.account_id"
            " LEFT JOIN emails e ON e.id = m.email_id WHERE m.recipient = ?",
            (self.number,),
        )

    def _received_sql(self) -> tuple[str, tuple[object, ...]]:
        return (
            "SELECT o.id, o.received_at, o.destination, o.state, o.text, c.user_email AS user FROM mo o"
            f" LEFT JOIN conversations c ON c.id = o.conversation_id WHERE o.source {self._in}",
            self.forms,
        )

    def _premium_sql(self) -> tuple[str, tuple[object, ...]]:
        return (
            "SELECT id, received_at, number, password, parts, price, state, answers, text FROM premium_mo"
            f" WHERE phone {self._in}",
            self.forms,
        )

    def _mails_sql(self) -> tuple[str, tuple[object, ...]]:
        return (
            "SELECT id, created_at, kind, rcpt, state FROM outbox"
            " WHERE message_ref IN (SELECT id FROM messages WHERE recipient = ?)"
            f" OR mo_ref IN (SELECT id FROM mo WHERE source {self._in})",
            (self.number, *self.forms),
        )

    def _listed(self, query: tuple[str, tuple[object, ...]], order: str, limit: int) -> dict[str, Any]:
        sql, args = query
        rows = _rows(self.conn.execute(f"{sql} ORDER BY {order} DESC LIMIT ?", (*args, limit)))
        return {"count": self.count(sql, args), "rows": rows}

    def holdings(self, limit: int) -> dict[str, Any]:
        """Each kind of row about the phone: its count, and up to `limit` of them newest first."""
        kept = self.conn.execute(
            f"SELECT COUNT(*) FROM mo WHERE source {self._in} AND state = 'throttled'", self.forms
        ).fetchone()[0]
        optout = self.conn.execute(
            "SELECT word, source, created_at FROM optouts WHERE number = ?", (self.number,)
        ).fetchone()
        return {
            "sent": self._listed(self._sent_sql(), "m.id", limit),
            "received": self._listed(self._received_sql(), "o.id", limit),
            "premium": self._listed(self._premium_sql(), "id", limit),
            "conversations": _rows(
                self.conn.execute(
                    "SELECT id, number, user_email, subject, started_at, last_mt_at FROM conversations"
                    " WHERE phone = ? ORDER BY last_mt_at DESC",
                    (self.number,),
                )
            ),
            "optout": None if optout is None else dict(zip(("word", "source", "at"), optout, strict=True)),
            "kept": {
                "answers": int(kept),
                "state": self.conn.execute(
                    f"SELECT COUNT(*) FROM kept_phones WHERE source {self._in}", self.forms
                ).fetchone()[0],
            },
            "mails": self._listed(self._mails_sql(), "id", limit),
        }

    def waiting(self) -> list[tuple[int, str]]:
        """The SMS to the phone with a part not sent yet: (message id, the part's state)."""
        return [
            (int(r[0]), str(r[1]))
            for r in self.conn.execute(
                "SELECT m.id, MIN(p.state) FROM messages m JOIN parts p ON p.message_id = m.id"
                f" WHERE m.recipient = ? AND p.state IN ({_marks(WAITING)}) GROUP BY m.id ORDER BY m.id",
                (self.number, *WAITING),
            )
        ]

    def mails_shared(self) -> int:
        """The mails the phone's SMS came in that went to other numbers too: their text stays."""
        return self.count(*self._mails_of(shared=True))

    def mails_own(self) -> int:
        """The mails the phone's SMS came in that went to it alone: their text and subject go."""
        return self.count(*self._mails_of(shared=False))

    def _mails_of(self, *, shared: bool) -> tuple[str, tuple[object, ...]]:
        test = "EXISTS" if shared else "NOT EXISTS"
        return (
            "SELECT DISTINCT m.email_id FROM messages m WHERE m.recipient = ?"
            f" AND {test} (SELECT 1 FROM messages o WHERE o.email_id = m.email_id AND o.recipient <> ?)",
            (self.number, self.number),
        )

    # ---- the erasure (art. 17) ------------------------------------------------------------------

    def erase(self) -> Erased:
        """Every text of the phone replaced by `ERASED`, its conversations and kept-answer state
        deleted, in the caller's transaction. The caller has made sure no SMS to it waits.

        Its answers kept past the hourly limit end `failed` with a note saying why: left kept, the
        hourly mail of kept answers would mail the marker to the user."""
        c = self.conn
        n, forms, within = self.number, self.forms, self._in
        mine = "SELECT id FROM messages WHERE recipient = ?"
        my_mo = f"SELECT id FROM mo WHERE source {within}"
        emails_sql, emails_args = self._mails_of(shared=False)
        mails_kept = self.mails_shared()
        # The mails first: found by the SMS and answers they are about, whose rows stay.
        outbox = f"(message_ref IN ({mine}) OR mo_ref IN ({my_mo}))"
        not_sent = c.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, content = ?"
            f" WHERE state = 'queued' AND {outbox}",
            (NOT_SENT, ERASED.encode(), n, *forms),
        ).rowcount
        others = c.execute(
            f"UPDATE outbox SET content = ? WHERE content <> ? AND {outbox}",
            (ERASED.encode(), ERASED.encode(), n, *forms),
        ).rowcount
        emails = c.execute(
            f"UPDATE emails SET text = ?, subject = NULL WHERE id IN ({emails_sql})", (ERASED, *emails_args)
        ).rowcount
        reports = c.execute(
            "UPDATE dlrs SET raw = ? WHERE raw IS NOT NULL AND part_id IN"
            f" (SELECT id FROM parts WHERE message_id IN ({mine}))",
            (ERASED, n),
        ).rowcount
        parts = c.execute(
            f"UPDATE parts SET text = ?, payload = X'' WHERE message_id IN ({mine})", (ERASED, n)
        ).rowcount
        sent = c.execute("UPDATE messages SET text = ? WHERE recipient = ?", (ERASED, n)).rowcount
        premium = f"SELECT id FROM premium_mo WHERE phone {within}"
        answers = c.execute(
            f"UPDATE premium_answers SET text = ? WHERE text IS NOT NULL AND premium_mo_id IN ({premium})",
            (ERASED, *forms),
        ).rowcount
        premium_sms = c.execute(
            f"UPDATE premium_mo SET text = ? WHERE phone {within}", (ERASED, *forms)
        ).rowcount
        # An MO keeps no conversation id once its conversation is gone: SQLite gives a deleted
        # highest id to the next conversation, another company's (migration 39).
        conversations = "SELECT id FROM conversations WHERE phone = ?"
        c.execute(f"UPDATE mo SET conversation_id = NULL WHERE conversation_id IN ({conversations})", (n,))
        kept = c.execute(
            f"UPDATE mo SET state = 'failed', note = ? WHERE source {within} AND state = 'throttled'",
            (KEPT_NOTE, *forms),
        ).rowcount
        received = c.execute(f"UPDATE mo SET text = ? WHERE source {within}", (ERASED, *forms)).rowcount
        gone = c.execute("DELETE FROM conversations WHERE phone = ?", (n,)).rowcount
        c.execute(f"DELETE FROM kept_phones WHERE source {within}", forms)
        return Erased(
            sms_sent=sent,
            sms_parts=parts,
            reports=reports,
            sms_received=received,
            premium_sms=premium_sms,
            premium_answers=answers,
            mails_erased=emails,
            mails_kept=mails_kept,
            conversations=gone,
            kept_answers=kept,
            outbox_mails=not_sent + others,
            outbox_not_sent=not_sent,
        )
