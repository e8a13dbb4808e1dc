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

Some mails name the phone with no row of it behind them: the not-sent notice of a number left out
of a group mail (its identical SMS today) or of an out-of-office reply to it, and a bounce forwarded
(to its address, or quoting a mail the gateway wrote about it). They carry no reference to it, so
they are found by what they say, read off the index of their kinds (migration 54): a not-sent
notice that names other numbers too has only the phone's number replaced (the sender's subject and
the others stay); one naming it alone, and a bounce's forward, are erased whole, and so is the
bounce's own record (`emails`) when it names no other number. A delivery report never matched to
an SMS is found by the phone's SMS given its id, or by the phone in a CIMD2 report's key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import sqlite3
from collections.abc import Sequence
from email.parser import BytesParser
from typing import Any, NamedTuple

from gateway import mailheaders
from gateway.notify import set_text

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
# The kinds of mail that may name a phone no row of it stands behind, as migration 54's index is
# written (SQLite takes a partial index only for a query that repeats its predicate).
_NAMING = "kind IN ('not-sent', 'bounce-forward')"
# A phone number as the gateway's mails write one: E.164.
_ANY_NUMBER = re.compile(rb"\+([0-9]{6,15})(?![0-9])")
# A MIME part's body in base64: its header block ends at the empty line, its body at the first line
# that is not base64 (the next boundary).
_BASE64_PART = re.compile(
    rb"content-transfer-encoding:[ \t]*base64[ \t]*\r?\n(?:[^\r\n]+\r?\n)*?\r?\n((?:[a-z0-9+/=]+\r?\n)+)"
)


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
    outbox_named: int  # notices naming it and other numbers: its number replaced, the rest kept
    mails_unsent: int  # the records of mails to it alone never sent as SMS (bounces, out-of-office replies)
    reports_unmatched: int  # delivery reports never matched to an SMS: as the SMSC wrote them


class Named(NamedTuple):
    """A mail found by what it says (`_NAMING`): whether it names other numbers too."""

    id: int
    kind: str
    email_ref: int | None
    others: bool


def _readable(content: bytes) -> list[bytes]:
    """The mail's bytes as its reader sees them: quoted-printable's soft line breaks joined (one may
    split a number), and each base64 part decoded (a bounce forwarded as a file). Read with two
    regular expressions, not the email package: its parser took 7 ms a forward, 7 s for a thousand."""
    seen = [content.replace(b"=\r\n", b"").replace(b"=\n", b"")]
    if b"base64" not in content and b"BASE64" not in content and b"Base64" not in content:
        return seen
    # Found in a lower-case copy (a pattern that ignores case is not searched for by its text),
    # decoded from the mail itself.
    for block in _BASE64_PART.finditer(content.lower()):
        with contextlib.suppress(binascii.Error, ValueError):
            seen.append(base64.b64decode(content[block.start(1) : block.end(1)]))  # line breaks skipped
    return seen


def _numbers(content: bytes) -> set[bytes]:
    """The digits of every E.164 number the mail names."""
    return {m.group(1) for text in _readable(content) for m in _ANY_NUMBER.finditer(text)}


def _names(text: bytes, digits: bytes) -> bool:
    """Whether `text` names the number whose digits these are, as a number of its own (not the start
    or end of a longer one). A search for the digits first: a pattern with a look-behind is not
    searched for by its text, and took 2.5 s over a thousand forwards."""
    at = text.find(digits)
    while at >= 0:
        end = at + len(digits)
        if (at == 0 or not text[at - 1 : at].isdigit()) and not text[end : end + 1].isdigit():
            return True
        at = text.find(digits, at + 1)
    return False


def _number_pattern(number: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9]){re.escape(number)}(?![0-9])")


def without_number(content: bytes, number: str) -> bytes:
    """A plain notice (`gateway.notify.notice`) with the phone's number replaced by `ERASED` in its
    subject and text, and the rest as it was: the sender's subject, the other numbers."""
    msg = BytesParser(policy=mailheaders.POLICY).parsebytes(content)
    pattern = _number_pattern(number)
    subject = msg.get("Subject")
    if subject is not None:
        msg.replace_header("Subject", pattern.sub(ERASED, str(subject)))
    body = msg.get_body(("plain",))
    if body is None:
        return ERASED.encode()
    set_text(body, pattern.sub(ERASED, body.get_content()))
    return msg.as_bytes()


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
        # The mails found by what they say, and the highest id read: a mail's text changes only by
        # an erasure, so a second reading (in the erasing write) reads the mails queued since.
        self._named: list[Named] = []
        self._named_to = 0

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

    def _referenced(self) -> set[int]:
        """The mails about the phone by their references: about an SMS to it or from it, a mail all of
        whose SMS went to it, a premium SMS from it. One SELECT per reference, each off its own index
        (an OR of them read the whole outbox)."""
        own, own_args = self._mails_of(shared=False)
        n = self.number
        sql = (
            "SELECT id FROM outbox WHERE message_ref IN (SELECT id FROM messages WHERE recipient = ?)"
            " UNION SELECT id FROM outbox WHERE mo_ref IN (SELECT id FROM mo WHERE source = ?)"
            f" UNION SELECT id FROM outbox WHERE email_ref IN ({own})"
            " UNION SELECT id FROM outbox WHERE premium_ref IN (SELECT id FROM premium_mo WHERE phone = ?)"
        )
        return {int(r[0]) for r in self.conn.execute(sql, (n, n, *own_args, n))}

    def named(self) -> list[Named]:
        """The mails that name the phone with no reference to it (`_NAMING`), read off their index;
        those read before not again. Call it before the erasing write: it reads every such mail's
        text (0.7 s at 2,000 bounces forwarded), which the write then need not hold its lock for."""
        digits = self.number[1:].encode()
        for id_, kind, email_ref, content in self.conn.execute(
            f"SELECT id, kind, email_ref, content FROM outbox WHERE {_NAMING} AND id > ? ORDER BY id",
            (self._named_to,),
        ):
            self._named_to = max(self._named_to, int(id_))
            if not any(_names(text, digits) for text in _readable(bytes(content))):
                continue
            others = bool(_numbers(bytes(content)) - {digits})
            self._named.append(Named(int(id_), str(kind), email_ref, others))
        return list(self._named)

    def _split(self) -> tuple[list[int], list[int], list[int]]:
        """(the mails erased whole, those that keep all but the phone's number, the bounce records
        about it alone). A not-sent notice naming other numbers too is the sender's and theirs."""
        whole = self._referenced()
        named = self.named()
        replaced = [m.id for m in named if m.kind == "not-sent" and m.others and m.id not in whole]
        whole |= {m.id for m in named if m.id not in replaced}
        # A bounce's own record, and an out-of-office reply's to the phone alone (never sent).
        records = {m.email_ref for m in named if m.email_ref is not None and not m.others}
        # A premium SMS's bounce names its premium SMS: its record is found through the forward.
        for email_ref, content in self.conn.execute(
            "SELECT email_ref, content FROM outbox WHERE premium_ref IN"
            " (SELECT id FROM premium_mo WHERE phone = ?)"
            " AND kind = 'bounce-forward' AND email_ref IS NOT NULL",
            (self.number,),
        ):
            if not _numbers(bytes(content)) - {self.number[1:].encode()}:
                records.add(int(email_ref))
        return sorted(whole), sorted(replaced), sorted(records)

    def _mails_sql(self) -> tuple[str, tuple[object, ...]]:
        whole, replaced, _ = self._split()
        return (
            "SELECT id, created_at, kind, rcpt, state FROM outbox"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(whole + replaced),),
        )

    def _unmatched_sql(self) -> tuple[str, tuple[object, ...]]:
        """The delivery reports never matched to an SMS that are the phone's: the report of one of its
        SMS that came after the SMS ended (its SMSC id, off the unmatched reports' index), and a CIMD2
        report whose key ends in the phone's number (`smsc.cimd2.messages.key_digits`)."""
        return (
            # From the phone's SMS (CROSS JOIN keeps the order): not every unmatched report read.
            "SELECT d.id FROM messages m CROSS JOIN parts p CROSS JOIN dlrs d"
            " WHERE m.recipient = ? AND p.message_id = m.id AND p.smsc_id IS NOT NULL"
            " AND d.link = p.link AND d.smsc_id = p.smsc_id AND d.part_id IS NULL"
            " AND d.received_at >= p.submitted_at"
            " UNION SELECT id FROM dlrs INDEXED BY dlrs_unmatched WHERE part_id IS NULL AND smsc_id LIKE ?",
            (self.number, f"%:{self.number[1:]}"),
        )

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
            "reports_unmatched": self.count(*self._unmatched_sql()),
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
        whole, replaced, records = self._split()
        ids, ids_args = "SELECT value FROM json_each(?)", (json.dumps(whole),)
        not_sent = c.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, content = ?"
            f" WHERE state = 'queued' AND id IN ({ids})",
            (NOT_SENT, ERASED.encode(), *ids_args),
        ).rowcount
        others = c.execute(
            f"UPDATE outbox SET content = ? WHERE content <> ? AND id IN ({ids})",
            (ERASED.encode(), ERASED.encode(), *ids_args),
        ).rowcount
        # Still worth sending without the number (a queued one goes): the sender hears of the others.
        named = 0
        for id_ in replaced:
            row = c.execute("SELECT content FROM outbox WHERE id = ?", (id_,)).fetchone()
            if row is not None:  # else purged since it was read
                c.execute(
                    "UPDATE outbox SET content = ? WHERE id = ?", (without_number(bytes(row[0]), n), id_)
                )
                named += 1
        unsent = c.execute(
            "UPDATE emails SET text = ?, subject = NULL WHERE id IN (SELECT value FROM json_each(?))"
            " AND text <> ?",
            (ERASED, json.dumps(records), ERASED),
        ).rowcount
        unmatched_sql, unmatched_args = self._unmatched_sql()
        unmatched = c.execute(
            f"UPDATE dlrs SET raw = ? WHERE raw IS NOT NULL AND raw <> ? AND id IN ({unmatched_sql})",
            (ERASED, ERASED, *unmatched_args),
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
            outbox_named=named,
            mails_unsent=unsent,
            reports_unmatched=unmatched,
        )
