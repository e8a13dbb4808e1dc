"""What the database holds about one phone number, and the erasure of its texts.

A text the phone sent or was sent lives in more than one column: the SMS (`messages.text`), each
of its parts (`parts.text` and the encoded `parts.payload`), the delivery report as the SMSC wrote
it (`dlrs.raw`, whose SMPP form quotes the text's start), the mail it came in (`emails.text`,
`subject`), an answer (`mo.text`), a premium SMS and the free answers to it (`premium_mo.text`,
`premium_answers.text`), a conversation's last text, and every mail the gateway wrote about it
(`outbox.content`: reports, answers forwarded, the notices about the mail it came in, a premium SMS's
bounce forwarded). All of them are found here, by one number: the phone's E.164 form, which is how
every column about a phone keeps it (a source the SMSC wrote without "+" that no plan reads as a
number is a sender ID, kept as written, and no phone's).

What the law lets or obliges the operator to keep stays: the billing facts (number, time, parts,
price, state) and the opt-out entry, which is how the phone's objection is honoured. A mail's own
text is its sender's, and the mail may have gone to other numbers too: it is erased only when every
SMS it became went to this number; so are the notices about it (confirmation, held, truncated).
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
# A premium SMS kept until its client's address confirms: ended, never forwarded (verification
# forwards the state 'awaiting' only: `premium.handlers.forward_awaiting`). Its billing facts stay.
PREMIUM_ERASED = "erased"
AWAITING_NOTE = "erased at the phone's request before its client's address confirmed: never mailed"


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
    segments: int  # parts of a long SMS from it still waiting for the rest: deleted
    premium_awaiting: int  # premium SMS kept until the client's address confirms: ended, never mailed


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


class PhoneRepo:
    """One phone's rows, by its E.164 form `number`: how the gateway stores the numbers it sends
    to, its conversations and opt-outs, and the source of an SMS (`mo`, `premium_mo`, `kept_phones`)
    that any plan reads as a number."""

    def __init__(self, conn: sqlite3.Connection, number: str) -> None:
        self.conn = conn
        self.number = number

    # ---- the reads (art. 15) --------------------------------------------------------------------

    def _one(self, sql: str, *args: object) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

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
            " LEFT JOIN conversations c ON c.id = o.conversation_id"
            " WHERE o.source = ? AND o.state <> 'segment'",
            (self.number,),
        )

    def _premium_sql(self) -> tuple[str, tuple[object, ...]]:
        return (
            "SELECT id, received_at, number, password, parts, price, state, answers, text FROM premium_mo"
            " WHERE phone = ?",
            (self.number,),
        )

    def _outbox_ids(self) -> tuple[str, tuple[object, ...]]:
        """The mails about the phone: about an SMS to it or from it, a mail all of whose SMS went to
        it, a premium SMS from it. One SELECT per reference, each off its own index (an OR of them
        read the whole outbox)."""
        own, own_args = self._mails_of(shared=False)
        n = self.number
        return (
            "SELECT id FROM outbox WHERE message_ref IN (SELECT id FROM messages WHERE recipient = ?)"
            " UNION SELECT id FROM outbox WHERE mo_ref IN (SELECT id FROM mo WHERE source = ?)"
            f" UNION SELECT id FROM outbox WHERE email_ref IN ({own})"
            " UNION SELECT id FROM outbox WHERE premium_ref IN (SELECT id FROM premium_mo WHERE phone = ?)",
            (n, n, *own_args, n),
        )

    def _mails_sql(self) -> tuple[str, tuple[object, ...]]:
        ids, args = self._outbox_ids()
        return (f"SELECT id, created_at, kind, rcpt, state FROM outbox WHERE id IN ({ids})", args)

    def _listed(self, query: tuple[str, tuple[object, ...]], order: str, limit: int) -> dict[str, Any]:
        sql, args = query
        rows = _rows(self.conn.execute(f"{sql} ORDER BY {order} DESC LIMIT ?", (*args, limit)))
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
                "state": self._one("SELECT COUNT(*) FROM kept_phones WHERE source = ?", n),
            },
            "segments": self._one("SELECT COUNT(*) FROM mo WHERE source = ? AND state = 'segment'", n),
            "awaiting": self._one(
                "SELECT COUNT(*) FROM premium_mo WHERE phone = ? AND state = 'awaiting'", n
            ),
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
        n = self.number
        mine = "SELECT id FROM messages WHERE recipient = ?"
        emails_sql, emails_args = self._mails_of(shared=False)
        mails_kept = self.mails_shared()
        # The mails first: found by the SMS, answers and mails they are about, whose rows stay.
        ids, ids_args = self._outbox_ids()
        not_sent = c.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, content = ?"
            f" WHERE state = 'queued' AND id IN ({ids})",
            (NOT_SENT, ERASED.encode(), *ids_args),
        ).rowcount
        others = c.execute(
            f"UPDATE outbox SET content = ? WHERE content <> ? AND id IN ({ids})",
            (ERASED.encode(), ERASED.encode(), *ids_args),
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
        premium = "SELECT id FROM premium_mo WHERE phone = ?"
        answers = c.execute(
            f"UPDATE premium_answers SET text = ? WHERE text IS NOT NULL AND premium_mo_id IN ({premium})",
            (ERASED, n),
        ).rowcount
        # Kept until the client's address confirms: left so, the confirmation would mail the marker.
        c.execute(
            "UPDATE mo SET note = ? WHERE id IN"
            " (SELECT mo_id FROM premium_mo WHERE phone = ? AND state = 'awaiting')",
            (AWAITING_NOTE, n),
        )
        awaiting = c.execute(
            "UPDATE premium_mo SET state = ?, note = ? WHERE phone = ? AND state = 'awaiting'",
            (PREMIUM_ERASED, AWAITING_NOTE, n),
        ).rowcount
        premium_sms = c.execute("UPDATE premium_mo SET text = ? WHERE phone = ?", (ERASED, n)).rowcount
        # An MO keeps no conversation id once its conversation is gone: SQLite gives a deleted
        # highest id to the next conversation, another company's (migration 39).
        conversations = "SELECT id FROM conversations WHERE phone = ?"
        c.execute(f"UPDATE mo SET conversation_id = NULL WHERE conversation_id IN ({conversations})", (n,))
        kept = c.execute(
            "UPDATE mo SET state = 'failed', note = ? WHERE source = ? AND state = 'throttled'",
            (KEPT_NOTE, n),
        ).rowcount
        # The parts of a long SMS still waiting for the rest: erased, the rest would be joined to the
        # marker and mailed; gone, the parts coming later make an incomplete SMS of their own.
        segments = c.execute("DELETE FROM mo WHERE source = ? AND state = 'segment'", (n,)).rowcount
        received = c.execute("UPDATE mo SET text = ? WHERE source = ?", (ERASED, n)).rowcount
        gone = c.execute("DELETE FROM conversations WHERE phone = ?", (n,)).rowcount
        c.execute("DELETE FROM kept_phones WHERE source = ?", (n,))
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
            segments=segments,
            premium_awaiting=awaiting,
        )
