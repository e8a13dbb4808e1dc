"""The erasure of one phone's texts (GDPR art. 17, `smsgw phone forget`).

A text the phone sent or was sent lives in more than one column: the SMS (`messages.text`), each
of its parts (`parts.text` and the encoded `parts.payload`), the delivery report as the SMSC wrote
it (`dlrs.raw`, whose SMPP form quotes the text's start), the mail it came in (`emails.text`,
`subject`), an answer (`mo.text`), a premium SMS and the free answers to it (`premium_mo.text`,
`premium_answers.text`), a conversation's last text, and every mail the gateway wrote about it
(`outbox.content`: reports, answers forwarded, the notices about the mail it came in, a premium SMS's
bounce forwarded). All of them are found by one number, the phone's E.164 form (`rows`), and the
mails naming it with no row behind them by what they say (`found`).

What the law lets or obliges the operator to keep stays: the billing facts (number, time, parts,
price, state) and the opt-out entry, which is how the phone's objection is honoured. A mail's own
text is its sender's, and the mail may have gone to other numbers too: it is erased only when every
SMS it became went to this number; so are the notices about it (confirmation, held, truncated). A
delivery report never matched to an SMS is found by the phone's SMS given its id (unless it named
another phone), by the phone it named, or by the phone in a CIMD2 report's key.
"""

from __future__ import annotations

import json
import sqlite3
from typing import NamedTuple

from gateway.conversations import queries as conversations
from gateway.premium import queries as premium
from gateway.privacy.found import PhoneMails
from gateway.privacy.naming import ERASED, without_number
from gateway.store.erasedmail import ERASED_MAIL, ERASED_WHY  # the store's: its outbox retry refuses one

# A mail about the phone not yet sent is not sent once its text is erased; why, as `outbox list` shows it.
NOT_SENT = f"not sent: {ERASED_WHY}"
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
    outbox_not_sent: int  # of them, not sent yet (queued, failed, being sent): never sent now
    outbox_sending: int  # of those, in a send at this moment: recorded sent if the relay takes it
    segments: int  # parts of a long SMS from it still waiting for the rest: deleted
    premium_awaiting: int  # premium SMS kept until the client's address confirms: ended, never mailed
    outbox_named: int  # mails naming it and other numbers: its number replaced, the rest kept
    mails_unsent: int  # the records of mails to it alone never sent as SMS (bounces, out-of-office replies)
    reports_unmatched: int  # delivery reports never matched to an SMS: as the SMSC wrote them
    records_named: int  # the records of such mails naming other numbers too: its number replaced


def erased_meanwhile(conn: sqlite3.Connection, mail_id: int) -> bool:
    """Whether `smsgw phone forget` ended the mail while the outbox worker was sending it: a failure
    of that send is not recorded over it. Put back in the queue, the marker alone went on the
    back-off to the mail's recipient; failed anew, its kind's copy to a fallback address carried it.
    Read in the write that would record the outcome, so the erasure commits before it or after it."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE id = ? AND state = 'failed' AND content = ?", (mail_id, ERASED_MAIL)
    ).fetchone()
    return row is not None


class PhoneErasure(PhoneMails):
    """The phone's texts erased, in the caller's transaction."""

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
        # Every one not sent ends failed, whatever its state: one failed before would go on a retry,
        # and one `active` is in a send now, whose outcome the outbox worker does not record over
        # this (a 451 put it back in the queue, to go on the back-off as the marker's one line). If
        # the relay takes it in that send, it is recorded sent; it is not sent again.
        (sending,) = c.execute(
            f"SELECT COUNT(*) FROM outbox WHERE state = 'active' AND id IN ({ids})", ids_args
        ).fetchone()
        not_sent = c.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, content = ?"
            f" WHERE state <> 'sent' AND NOT (state = 'failed' AND content = ?) AND id IN ({ids})",
            (NOT_SENT, ERASED_MAIL, ERASED_MAIL, *ids_args),
        ).rowcount
        others = c.execute(
            f"UPDATE outbox SET content = ? WHERE content <> ? AND id IN ({ids})",
            (ERASED_MAIL, ERASED_MAIL, *ids_args),
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
        answers, awaiting, premium_sms = premium.erase_phone(c, n, ERASED, PREMIUM_ERASED, AWAITING_NOTE)
        kept = c.execute(
            "UPDATE mo SET state = 'failed', note = ? WHERE source = ? AND state = 'throttled'",
            (KEPT_NOTE, n),
        ).rowcount
        # The parts of a long SMS still waiting for the rest: erased, the rest would be joined to the
        # marker and mailed; gone, the parts coming later make an incomplete SMS of their own.
        segments = c.execute("DELETE FROM mo WHERE source = ? AND state = 'segment'", (n,)).rowcount
        received = c.execute("UPDATE mo SET text = ? WHERE source = ?", (ERASED, n)).rowcount
        gone = conversations.forget_phone(c, n)
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
            outbox_sending=sending,
            segments=segments,
            premium_awaiting=awaiting,
            outbox_named=named,
            mails_unsent=unsent,
            reports_unmatched=unmatched,
            records_named=records_named,
        )
