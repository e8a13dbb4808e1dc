"""The mails about one phone: by their references to its rows, and those found by what they say.

Some mails name the phone with no row of it behind them: the not-sent notice of a number left out of
a group mail (its identical SMS today) or of an out-of-office reply to it, and a bounce forwarded
(to its address, or quoting a mail the gateway wrote about it). They carry no reference to it, so
they are found by what they say, in every form the gateway writes a number (`naming`), read off the
index of their kinds (migration 54): one that names other numbers too has only the phone's number
replaced (the sender's subject, the others, a forwarded bounce's structure stay, and a queued one is
still sent); one naming it alone is erased whole. So are the records (`emails`) of the mails
recorded and never sent (bounces, auto-replies) that were addressed to it or name it, read off the
index of such records (migration 21): naming other numbers too, they lose only the phone's number.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from gateway.conversations.numbers import display
from gateway.premium.queries import PHONE_VOTES
from gateway.privacy.mailsearch import NumberDigits
from gateway.privacy.naming import national_forms
from gateway.privacy.rows import PhoneRows

# The kinds of mail that may name a phone no row of it stands behind, as migration 68's index is
# written (SQLite takes a partial index only for a query that repeats its predicate): a bounce or a
# confirmation of several numbers (`dsn-group`, `notify-group`) is about its mail, not one SMS.
_NAMING = "kind IN ('not-sent', 'bounce-forward', 'dsn-group', 'notify-group')"
# The kinds among them whose `email_ref` is the record of a mail never sent (a bounce received, an
# out-of-office reply), not a mail of the user's.
_OF_RECORDS = ("not-sent", "bounce-forward")
# The records of mails recorded and never sent, as migration 21's index is written.
_RECORDED = "automatic IS NOT NULL"


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


class PhoneMails(PhoneRows):
    """The mails about the phone, and the records of mails about it never sent."""

    def __init__(self, conn: sqlite3.Connection, number: str) -> None:
        super().__init__(conn, number)
        # The mails found by what they say, and the highest id read: a mail's text changes only by
        # an erasure, so a second reading (in the erasing write) reads the mails queued since.
        self._named: list[Named] = []
        self._named_to = 0
        self._records: list[Record] = []
        self._records_to = 0
        self._digits = NumberDigits(number)

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
            f" UNION SELECT id FROM outbox WHERE premium_ref IN ({PHONE_VOTES})"
        )
        return {int(r[0]) for r in self.conn.execute(sql, (n, n, *own_args, n))}

    def named(self) -> list[Named]:
        """The mails that name the phone with no reference to it (`_NAMING`), read off their index;
        those read before not again. Call it before the erasing write: it reads every such mail's
        text (2.3 s at 224,000, each told by its digits first), which the write then need not hold its
        lock for."""
        # In the index's order, not sorted by id: sorting them took SQLite a temporary table of every
        # mail's text (0.5 s at 224,000).
        for id_, kind, email_ref, content in self.conn.execute(
            f"SELECT id, kind, email_ref, content FROM outbox WHERE {_NAMING} AND id > ?",
            (self._named_to,),
        ):
            self._named_to = max(self._named_to, int(id_))
            # Most such mails name other numbers: told from their digits, not decoded (`mailsearch`).
            if not self._digits.may_name(bytes(content)) or not self.forms.in_mail(bytes(content)):
                continue
            others = self.forms.others(bytes(content))
            self._named.append(Named(int(id_), str(kind), email_ref, others))
        self._named.sort()
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
        # recorded before the mails' numbers were, such a record names them nowhere itself. A bounce
        # the gateway wrote about a mail of several numbers refers to the user's own mail instead,
        # which the numbers it reached keep: never erased through it.
        records |= {
            m.email_ref for m in named if m.kind in _OF_RECORDS and m.email_ref is not None and not m.others
        } - shared
        # A premium SMS's bounce names its premium SMS: its record is found through the forward.
        for email_ref, content in self.conn.execute(
            f"SELECT email_ref, content FROM outbox WHERE premium_ref IN ({PHONE_VOTES})"
            " AND kind = 'bounce-forward' AND email_ref IS NOT NULL",
            (self.number,),
        ):
            if int(email_ref) not in shared and not self.forms.others(bytes(content)):
                records.add(int(email_ref))
        return sorted(whole), sorted(replaced), sorted(records), sorted(shared)
