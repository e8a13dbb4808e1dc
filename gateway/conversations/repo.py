"""The conversations repository: conversation rows and what became of each MO (the reply-number
choice is `gateway.conversations.pool`'s, the answers kept past the hourly limit
`gateway.conversations.keptrepo`'s).

One row per (user, phone): the number the phone sees the user's SMS come from, and the last
email's Message-ID, subject and SMS text, so that an answer can be mailed threaded and quoted.
Every verb joins the caller's transaction: the number is chosen in the same transaction that
accepts the mail, and the reply mail is queued in the same one that stores the MO.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.conversations import reached
from gateway.conversations.holding import added_since, sent_by_holder
from gateway.conversations.keptrepo import KeptRepo, spellings
from gateway.conversations.numbers import OwnIndex, normalise, own_form_indexed, own_index
from gateway.conversations.rows import C_COLUMNS as _C_COLUMNS
from gateway.conversations.rows import COLUMNS as _COLUMNS
from gateway.conversations.rows import LIVE, Conversation, Mo, mail_ref
from gateway.store.outbox import OutboxRepo, on_claim

# The keys of a `list_mo` row; the `mail_` ones are of the MO's latest mail (None: it has none).
_MO_KEYS = (
    "id",
    "received_at",
    "source",
    "destination",
    "state",
    "note",
    "text",
    "user",
    "mail_state",
    "mail_to",
    "mail_error",
    "mail_next",
)


# The MT upsert of `record_mt`, without and with the id read back.
_RECORD_MT = (
    "INSERT INTO conversations (phone, number, user_email, account_id, domain, header_message_id,"
    " subject, text, started_at, last_mt_at, refs, name) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (phone, user_email) DO UPDATE SET number = excluded.number,"
    " account_id = excluded.account_id, domain = excluded.domain, refs = excluded.refs,"
    " name = CASE WHEN conversations.last_mt_at < (SELECT created_at FROM users"
    " WHERE email = excluded.user_email) THEN excluded.name"
    " ELSE COALESCE(excluded.name, conversations.name) END,"
    " header_message_id = excluded.header_message_id, subject = excluded.subject,"
    " text = excluded.text, last_mt_at = excluded.last_mt_at,"
    # Begun again by a mail from another number or another account (its user moved there): the
    # new company's panel showed the time its user had first written to the phone from the old one.
    " started_at = CASE WHEN conversations.number = excluded.number"
    " AND conversations.account_id IS excluded.account_id"
    " THEN conversations.started_at ELSE excluded.started_at END"
)
_RECORD_MT_ID = _RECORD_MT + " RETURNING id"


class ConversationsRepo(KeptRepo):
    # ---- MT side ------------------------------------------------------------------------------

    def find(self, phone: str, user_email: str) -> Conversation | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM conversations WHERE phone = ? AND user_email = ?", (phone, user_email)
        ).fetchone()
        return Conversation(*row) if row else None

    def find_live(
        self, phone: str, user_email: str, now: float, window: float
    ) -> tuple[Conversation, bool] | None:
        """`find` and whether `live` would return it, in one statement."""
        row = self.conn.execute(
            f"SELECT {_COLUMNS}, {LIVE} FROM conversations WHERE phone = ? AND user_email = ?",
            (now, window, phone, user_email),
        ).fetchone()
        return (Conversation(*row[:-1]), bool(row[-1])) if row else None

    def record_mt(
        self,
        *,
        phone: str,
        number: str,
        user_email: str,
        account_id: int | None,
        domain: str,
        header_message_id: str | None,
        subject: str | None,
        text: str,
        refs: str | None = None,
        name: str | None = None,
        want_id: bool = True,
    ) -> int:
        """The conversation an accepted MT opens or continues; returns its id (0 with `want_id`
        False: SQLite builds a RETURNING's result in a temporary b-tree, a cost the accepting write,
        which has no use for the id, need not pay for every mail).

        `name`: what the mail called the phone (`forwarded.contact_name`). A mail that names it
        none keeps the name an earlier one gave: a Reply to the answer mail is addressed to the
        phone under the name we wrote, or under its bare number, which names nobody. A name given
        by an earlier holder of the address (its last SMS before the user was added again) is not
        kept: the new employee's answers came "From: <the predecessor's contact name>"."""
        now = self.clock()
        with self.transaction():
            row = self.conn.execute(
                _RECORD_MT_ID if want_id else _RECORD_MT,
                (
                    phone,
                    number,
                    user_email,
                    account_id,
                    domain,
                    header_message_id,
                    subject,
                    text,
                    now,
                    now,
                    refs,
                    name,
                ),
            ).fetchone()
            return int(row[0]) if want_id else 0

    def talks_to(self, phone: str, user_email: str) -> bool:
        """Whether the user has a conversation with the phone (open or not): whom a Reply means."""
        sql = "SELECT 1 FROM conversations WHERE phone = ? AND user_email = ? LIMIT 1"
        return self.conn.execute(sql, (phone, user_email)).fetchone() is not None

    def subject_of(self, phone: str, user_email: str) -> str | None:
        row = self.conn.execute(
            "SELECT subject FROM conversations WHERE phone = ? AND user_email = ?", (phone, user_email)
        ).fetchone()
        return None if row is None else row[0]

    # ---- MO side ------------------------------------------------------------------------------

    def mo(self, mo_id: int) -> Mo:
        row = self.conn.execute(
            "SELECT id, link, source, destination, text, received_at, concat_total, parts_at FROM mo"
            " WHERE id = ?",
            (mo_id,),
        ).fetchone()
        return Mo(*row)

    def find_mo(self, mo_id: int) -> Mo | None:
        """`mo`, or None once the retention purge has deleted it (an answer mail may outlive it)."""
        row = self.conn.execute(
            "SELECT id, link, source, destination, text, received_at, concat_total, parts_at FROM mo"
            " WHERE id = ?",
            (mo_id,),
        ).fetchone()
        return Mo(*row) if row else None

    def conversation_of(self, mo_id: int) -> Conversation | None:
        """The conversation the MO was mailed in, if any (and still kept)."""
        row = self.conn.execute(
            f"SELECT {_C_COLUMNS} FROM mo m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?",
            (mo_id,),
        ).fetchone()
        return Conversation(*row) if row else None

    def match(self, phone: str, number: str, at: float, window: float, region: str) -> Conversation | None:
        """`reached.answer_of`, an SMS whose submit is unanswered taken as not sent, one that went a moment
        ago as read (`conversation list`)."""
        found = reached.answer_of(self.conn, phone, number, at, window, region, unread=False)
        assert not isinstance(found, reached.Sent)
        return found

    def last_on(self, phone: str, number: str) -> Conversation | None:
        """The conversation whose SMS to `phone` from `number` came last, live or not (while kept):
        whom an answer no conversation takes most likely meant, for the operator to judge."""
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM conversations WHERE phone = ? AND number = ?"
            " ORDER BY last_mt_at DESC LIMIT 1",
            (phone, number),
        ).fetchone()
        return Conversation(*row) if row else None

    def account_of(self, account_id: int | None) -> tuple[str, float | None] | None:
        """(name, own reply window in days or None) of an account, or None: none, or removed since."""
        if account_id is None:
            return None
        row = self.conn.execute(
            "SELECT name, reply_window_days FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else float(row[1]))

    def holder(self, user_email: str) -> tuple[int, float] | None:
        return holder(self.conn, user_email)

    def gone(self, conv: Conversation) -> str | None:
        return gone(self.conn, conv, self.clock())

    def numbers_with(self, phone: str) -> list[str]:
        """Our numbers `phone` has had SMS from, as stored: the forms an answer of it must be matched to."""
        rows = self.conn.execute("SELECT DISTINCT number FROM conversations WHERE phone = ?", (phone,))
        return [r[0] for r in rows]

    def numbers_among(self, phone: str, forms: Sequence[str]) -> list[str]:
        """Those of `forms` that are numbers `phone` has had SMS from, by the index conversations_match."""
        marks = ", ".join("?" * len(forms))
        rows = self.conn.execute(
            f"SELECT DISTINCT number FROM conversations WHERE phone = ? AND number IN ({marks})",
            (phone, *forms),
        )
        return [r[0] for r in rows]

    def senders_among(self, forms: Sequence[str]) -> list[str]:
        """Those of `forms` that are an account's sender, from the settings cache: accounts.sender has
        no index, and its scan ran for every MO (`gateway.store.cache` drops the set on any change)."""
        senders = self.db.settings.get("account_senders", None, lambda: frozenset(self.account_senders()))
        return [f for f in forms if f in senders]

    def own_sender(self, destination: str, default_sender: str, region: str) -> str | None:
        """The default sender or the account's sender `destination` writes (`numbers.own_form`), by
        `numbers.own_index` kept while the settings stand (the config's default sender is part of the
        key: a reload may change it)."""

        def load() -> OwnIndex:
            senders = [default_sender, *self.account_senders()]
            return own_index([normalise(s, region) for s in senders], region)

        senders = self.db.settings.get("own_senders", (default_sender, region), load)
        return own_form_indexed(destination, senders, region)

    def account_senders(self) -> list[str]:
        """The accounts' own sender numbers (the admin may have changed them since the config seeded them)."""
        rows = self.conn.execute("SELECT DISTINCT sender FROM accounts WHERE sender IS NOT NULL")
        return [r[0] for r in rows]

    def settle_mo(self, mo_id: int, state: str, conv: Conversation | None, note: str | None) -> None:
        """What became of the MO, and the conversation it answers with the account of the SMS it
        answers (`reached.quoting`): that account is billed for the answer, whichever account the
        user sends from later. Not the row's account as it is now: `record_mt` moves it along with the
        user's next mail before its SMS goes, and an answer to the old SMS was billed to the new one.
        The SMS it answers is recorded too (`Conversation.message_id`), which a copy quotes later."""
        ids = (conv.id, conv.account_id, conv.message_id) if conv is not None else (None, None, None)
        with self.transaction():
            self.conn.execute(
                "UPDATE mo SET state = ?, conversation_id = ?, note = ?, account_id = ?,"
                " answered_message_id = ? WHERE id = ?",
                (state, ids[0], note, ids[1], ids[2], mo_id),
            )

    def rests_mailed(self, source: str, first: int, since: float) -> int:
        """How many late rests of the SMS whose first whole text is `first` (received at `since`)
        were mailed: by the phone's MOs by time (`mo_phone_times`, whose condition `id > 0` names),
        as `follows` has none of its own; through `mo_copies` (phone, our number, time) it read every MO
        the phone ever sent."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM mo WHERE source = ? AND received_at >= ? AND follows = ? AND id > 0"
            " AND state IN ('mailed', 'fallback')",
            (source, since, first),
        ).fetchone()
        return int(row[0])

    # ---- listing and retention ------------------------------------------------------------------

    def list_mo(
        self,
        *,
        since: float | None,
        numbers: Sequence[str] | None,
        limit: int,
        ours: bool = False,
        before: int | None = None,
        any_case: bool = False,
    ) -> list[dict[str, Any]]:
        """`numbers`: every form of one number (`numbers.written_forms`): the phone that wrote, or,
        `ours`, our number it wrote to. `before`: the MOs older than that id, the panel's next page
        (a range of the rowid however deep, where OFFSET would walk every MO it skips). `any_case`:
        `numbers` is one sender that is no phone (a sender ID), found in every spelling of its
        letters ("PROMO", "Promo"), as the hourly limit holds it (`keptrepo.spellings`), off
        `mo_copies` between its capitals and its small letters.

        One end at a time: `source IN … OR destination IN …` was read as a walk over every MO kept
        (no index serves the OR), seconds on a year's MOs for a phone that wrote twice. A phone's
        are found through `mo_copies`; ours are on most MOs, so the newest-first walk meets them
        at once."""
        where, args = ["m.state NOT IN ('segment', 'joined')"], []
        if since is not None:
            where.append("m.received_at >= ?")
            args.append(since)
        if before is not None:
            where.append("m.id < ?")
            args.append(before)
        if numbers and any_case and not ours:
            sql, spelled = spellings(numbers[0], "m.source")
            where.append(sql)
            args += spelled
        elif numbers:
            marks = ",".join("?" * len(numbers))
            where.append(f"m.{'destination' if ours else 'source'} IN ({marks})")
            args += [*numbers]
        # The MO's latest mail (`mo_ref`, through its index) in the same read: an MO is `mailed` once
        # its mail is queued, and the relay may defer that mail for days (`mail_state`, `mail_to`,
        # `mail_error`, `mail_next`: what `smsgw mo list` tells of it).
        rows = self.conn.execute(
            "SELECT m.id, m.received_at, m.source, m.destination, m.state, m.note, m.text, c.user_email,"
            " o.state, o.rcpt, o.last_error, o.next_attempt_at"
            " FROM mo m LEFT JOIN conversations c ON c.id = m.conversation_id"
            f" LEFT JOIN outbox o ON o.id = (SELECT MAX(x.id) FROM outbox x WHERE x.mo_ref = {mail_ref('m')})"
            f" WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [dict(zip(_MO_KEYS, r, strict=True)) for r in rows]

    def list_conversations(
        self,
        *,
        user: str | None,
        numbers: Sequence[str] | None,
        limit: int,
        account_id: int | None = None,
        ours: bool = False,
    ) -> list[Conversation]:
        """Newest first. By account or by user through their own indexes (`conversations_account`,
        `conversations_user`): ordered by age alone, SQLite walked every conversation for a user's
        or an account's few (a company admin's page held the daemon 98 s with 684,000 kept).
        `numbers` (every form of one number) is the phone's, through its index, or, `ours`, the
        number we send from, which most conversations share (as in `list_mo`)."""
        where, args = ["1"], []
        if account_id is not None:
            where.append("account_id = ?")
            args.append(account_id)
        if user is not None:
            where.append("user_email = ?")
            args.append(user)
        if numbers:
            marks = ",".join("?" * len(numbers))
            where.append(f"{'number' if ours else 'phone'} IN ({marks})")
            args += [*numbers]
        return [
            Conversation(*r)
            for r in self.conn.execute(
                f"SELECT {_COLUMNS} FROM conversations WHERE {' AND '.join(where)}"
                " ORDER BY last_mt_at DESC LIMIT ?",
                (*args, limit),
            )
        ]


def holder(conn: sqlite3.Connection, user_email: str) -> tuple[int, float] | None:
    """(account, when added) of the user who holds the address now, or None: nobody does. Read
    from the table, not the settings cache, in the MO's write: a removal and an add of the same
    address in between must be seen."""
    row = conn.execute("SELECT account_id, created_at FROM users WHERE email = ?", (user_email,)).fetchone()
    return None if row is None else (int(row[0]), float(row[1]))


def gone(conn: sqlite3.Connection, conv: Conversation, now: float) -> str | None:
    """Why the conversation's user may no longer have its answers (the MO's note), or None. On any
    connection: the panel reads it on its reader thread for a page of conversations.

    Removed from the ACL since, the customer's answers go to the company's fallback, not on to a
    former employee's mailbox for the rest of the reply window. So do they when the address was
    added again after the SMS answered (a new employee given `biuro@`, or the same person moved
    to another company's account by a remove and an add): its new holder would be told "you
    wrote" the predecessor's SMS, and another company's customer's answer would reach them. An
    SMS the new holder sends the phone opens the conversation again, once it reaches the phone.

    `conv` as `match` gives it: with the account and user of the SMS the answer is to
    (`reached.quoting`), which the row, moved on by a later mail whose SMS is held, no longer has."""
    held = holder(conn, conv.user_email)
    if held is None:
        return f"it answers {conv.user_email}, who is no longer a user of the gateway"
    account_id, added_at = held
    if conv.account_id is not None and account_id != conv.account_id:
        return f"it answers {conv.user_email}, who belongs to another account since"
    if added_since(added_at, conv.last_mt_at, now) and not sent_by_holder(conn, conv):
        return f"it answers an SMS {conv.user_email} sent before the address was added again as a user"
    return None


def addressee_gone(outbox: OutboxRepo, rcpt: str, mo_ref: int, queued_at: float) -> str | None:
    """Why an answer mail queued for `rcpt` at `queued_at` may no longer go there (`gone`'s rule, as
    the mail is sent), or None. A mail waits in the outbox while the relay fails: its user removed
    meanwhile, and the address given to a new employee, the predecessor's customer's answer reached
    the new holder. Removed, or added again after the mail was queued (whatever the conversation
    holds now: the new holder may have texted the phone since), or `gone` of the conversation it
    answers: the outbox sends it to the fallback address instead (`on_claim`)."""
    conv = ConversationsRepo(outbox.db, outbox.clock).conversation_of(mo_ref)
    if conv is None or conv.user_email.lower() != rcpt.lower():
        return None  # not to the user of the conversation it answers (an account's inbound address)
    held = holder(outbox.conn, rcpt)
    if held is None:
        return f"it answers {rcpt}, who is no longer a user of the gateway"
    now = outbox.clock()
    if added_since(held[1], queued_at, now):
        return f"it answers {rcpt}, whose address was added again as a user after the answer came"
    return gone(outbox.conn, conv, now)


# The kinds mailed to a conversation's user: an answer (gateway.conversations.replymail) and a
# flood's kept answers (gateway.conversations.kept.KIND).
on_claim(("reply", "reply-kept"), addressee_gone)
