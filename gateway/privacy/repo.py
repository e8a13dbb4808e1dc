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

Some mails name the phone with no row of it behind them: the not-sent notice of a number left out of
a group mail (its identical SMS today) or of an out-of-office reply to it, and a bounce forwarded
(to its address, or quoting a mail the gateway wrote about it). They carry no reference to it, so
they are found by what they say, in every form the gateway writes a number (`naming`), read off the
index of their kinds (migration 54): one that names other numbers too has only the phone's number
replaced (the sender's subject, the others, a forwarded bounce's structure stay, and a queued one is
still sent); one naming it alone is erased whole. So are the records (`emails`) of the mails
recorded and never sent (bounces, auto-replies) that were addressed to it or name it, read off the
index of such records (migration 21): naming other numbers too, they lose only the phone's number. A
delivery report never matched to an SMS is found by the phone's SMS given its id (unless it named
another phone), by the phone it named, or by the phone in a CIMD2 report's key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from gateway.conversations.numbers import display
from gateway.privacy.naming import ERASED, Forms, national_forms, without_number

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
# The records of mails recorded and never sent, as migration 21's index is written.
_RECORDED = "automatic IS NOT NULL"


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
    outbox_named: int  # mails naming it and other numbers: its number replaced, the rest kept
    mails_unsent: int  # the records of mails to it alone never sent as SMS (bounces, out-of-office replies)
    reports_unmatched: int  # delivery reports never matched to an SMS: as the SMSC wrote them
    records_named: int  # the records of such mails naming other numbers too: its number replaced


class Named(NamedTuple):
    """A mail found by what it says (`_NAMING`): whether it names other numbers too."""

    id: int
    kind: str
    email_ref: int | None
    others: bool


class Record(NamedTuple):
    """The record of a mail recorded and never sent (`_RECORDED`) that was addressed to the phone or
    names it: whether it names other numbers too."""

    id: int
    others: bool


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
        self._records: list[Record] = []
        self._records_to = 0
        self.forms = Forms(number)

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
        for id_, kind, email_ref, content in self.conn.execute(
            f"SELECT id, kind, email_ref, content FROM outbox WHERE {_NAMING} AND id > ? ORDER BY id",
            (self._named_to,),
        ):
            self._named_to = max(self._named_to, int(id_))
            if not self.forms.in_mail(bytes(content)):
                continue
            others = self.forms.others(bytes(content))
            self._named.append(Named(int(id_), str(kind), email_ref, others))
        return list(self._named)

    def records(self) -> list[Record]:
        """The records of mails recorded and never sent (`_RECORDED`: bounces, auto-replies) that were
        addressed to the phone (`emails.numbers`, migration 54) or name it in their subject or text,
        read off their index (migration 21) and found by SQLite's `instr` (the digits every form but
        the grouped one holds, and the grouped one as `display` writes it) before each is read here;
        those read before not again. Call it before the erasing write, as `named`."""
        nationals = national_forms(self.number) or [self.number[1:]]
        digits = min(nationals, key=len)  # in the E.164 form and the national ones alike
        spaced = display(self.number)
        for id_, numbers, subject, text in self.conn.execute(
            "SELECT id, numbers, subject, text FROM emails INDEXED BY emails_recorded"
            f" WHERE {_RECORDED} AND id > ? AND (instr(numbers, ?) OR instr(subject, ?) OR instr(text, ?)"
            " OR instr(subject, ?) OR instr(text, ?)) ORDER BY id",
            (self._records_to, self.number, digits, digits, spaced, spaced),
        ):
            self._records_to = max(self._records_to, int(id_))
            addressed = (numbers or "").split()
            said = f"{subject or ''}\n{text or ''}".encode()
            if self.number not in addressed and not self.forms.named_in(said):
                continue
            others = any(n != self.number for n in addressed) or self.forms.others(said)
            self._records.append(Record(int(id_), others))
        return list(self._records)

    def _split(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """(the mails erased whole, those that keep all but the phone's number, the records of mails
        never sent erased whole, those that keep all but the phone's number). A mail naming other
        numbers too is also theirs: a not-sent notice the sender's, a bounce's forward the operator's
        (the other numbers' bounce)."""
        whole = self._referenced()
        named = self.named()
        replaced = [m.id for m in named if m.others and m.id not in whole]
        whole |= {m.id for m in named if m.id not in replaced}
        found = self.records()
        records = {r.id for r in found if not r.others}
        shared = {r.id for r in found if r.others}
        # A bounce's own record, and an out-of-office reply's, whose notice names the phone alone:
        # recorded before the mails' numbers were, such a record names them nowhere itself.
        records |= {m.email_ref for m in named if m.email_ref is not None and not m.others} - shared
        # A premium SMS's bounce names its premium SMS: its record is found through the forward.
        for email_ref, content in self.conn.execute(
            "SELECT email_ref, content FROM outbox WHERE premium_ref IN"
            " (SELECT id FROM premium_mo WHERE phone = ?)"
            " AND kind = 'bounce-forward' AND email_ref IS NOT NULL",
            (self.number,),
        ):
            if int(email_ref) not in shared and not self.forms.others(bytes(content)):
                records.add(int(email_ref))
        return sorted(whole), sorted(replaced), sorted(records), sorted(shared)

    def _mails_sql(self) -> tuple[str, tuple[object, ...]]:
        whole, replaced, _, _ = self._split()
        return (
            "SELECT id, created_at, kind, rcpt, state FROM outbox"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(whole + replaced),),
        )

    def _unmatched_sql(self) -> tuple[str, tuple[object, ...]]:
        """The delivery reports never matched to an SMS that are the phone's: the report of one of its
        SMS that came after the SMS ended (its SMSC id, off the unmatched reports' index) unless it
        named another phone (`dlrs.phone`, migration 54: the SMSC gave the id again), a report that
        named the phone, and a CIMD2 report whose key ends in the phone's number
        (`smsc.cimd2.messages.key_digits`)."""
        return (
            # From the phone's SMS (CROSS JOIN keeps the order): not every unmatched report read.
            "SELECT d.id FROM messages m CROSS JOIN parts p CROSS JOIN dlrs d"
            " WHERE m.recipient = ? AND p.message_id = m.id AND p.smsc_id IS NOT NULL"
            " AND d.link = p.link AND d.smsc_id = p.smsc_id AND d.part_id IS NULL"
            " AND d.received_at >= p.submitted_at AND (d.phone IS NULL"
            " OR substr(m.recipient, 1 - length(d.phone)) = substr(d.phone, 2)"
            " OR substr(m.source, 1 - length(d.phone)) = substr(d.phone, 2))"
            " UNION SELECT id FROM dlrs INDEXED BY dlrs_unmatched WHERE part_id IS NULL"
            " AND (smsc_id LIKE ? OR phone = ?)",
            (self.number, f"%:{self.number[1:]}", self.number),
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
        whole, replaced, records, shared = self._split()
        # Still worth sending without the number (a queued one goes): the sender, or the operator's
        # fallback mailbox, hears of the others. One whose number could not be replaced (written in
        # a form not read here: an encoded header) is erased whole.
        rewritten: list[tuple[bytes, int]] = []
        for id_ in replaced:
            row = c.execute("SELECT kind, content FROM outbox WHERE id = ?", (id_,)).fetchone()
            if row is None:  # purged since it was read
                continue
            content = bytes(row[1])
            new = without_number(content, n) if row[0] == "not-sent" else self.forms.replaced(content)
            if self.forms.in_mail(new):
                whole.append(id_)
            else:
                rewritten.append((new, id_))
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
        named = len(rewritten)
        c.executemany("UPDATE outbox SET content = ? WHERE id = ?", rewritten)
        # The records of mails never sent naming other numbers too: the phone's number out of their
        # subject, text and recipients; one it could not be taken out of is erased whole.
        records_named = 0
        for id_ in shared:
            row = c.execute("SELECT numbers, subject, text FROM emails WHERE id = ?", (id_,)).fetchone()
            if row is None:
                continue
            numbers = " ".join(x for x in (row[0] or "").split() if x != n) or None
            subject = None if row[1] is None else self.forms.text.sub(ERASED, row[1])
            text = self.forms.text.sub(ERASED, row[2])
            if self.forms.named_in(f"{subject or ''}\n{text}".encode()):
                records.append(id_)
                continue
            if (numbers, subject, text) != tuple(row):
                c.execute(
                    "UPDATE emails SET numbers = ?, subject = ?, text = ? WHERE id = ?",
                    (numbers, subject, text, id_),
                )
                records_named += 1
        unsent = c.execute(
            "UPDATE emails SET text = ?, subject = NULL WHERE id IN (SELECT value FROM json_each(?))"
            " AND text <> ?",
            (ERASED, json.dumps(records), ERASED),
        ).rowcount
        # Its number out of their recipients too: a record erased names it nowhere.
        c.execute(
            "UPDATE emails SET numbers = NULLIF(trim(replace(' ' || numbers || ' ', ?, ' ')), '')"
            " WHERE id IN (SELECT value FROM json_each(?)) AND numbers IS NOT NULL",
            (f" {n} ", json.dumps(records)),
        )
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
            records_named=records_named,
        )
