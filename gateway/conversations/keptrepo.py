"""The answers kept past the hourly limit, as the repository reads and settles them for their hourly
mail (`gateway.conversations.kept`): which phones are due, their oldest answers, the run of mails
each phone had, moving the ones a mail carried on, and the note an answer is kept with.

Reads go through `mo_kept`, the index of kept answers alone, so that a phone with thousands kept has
a mail's worth read each hour, never every MO. `gateway.conversations.repo.ConversationsRepo` builds
on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from gateway.conversations import reached
from gateway.conversations.pool import ReplyPool
from gateway.conversations.rows import C_COLUMNS as _C_COLUMNS
from gateway.conversations.rows import Conversation
from gateway.store import stepchunks
from gateway.store.counted import keep_counted
from gateway.store.forwardsteps import stepped_since

# Between why an answer was kept and the note its own mail would have carried (an opt-in word, a
# sentence that may be an opt-out, parts that never came): the mail of kept answers prints it.
OWN_NOTE = ". Its own note: "


def kept_note(reason: str, own: str | None) -> str:
    """The note of an answer kept for the hourly limit: why, then the note its own mail would have
    carried (START, a sentence that may be an opt-out, parts that never came), which its mail of
    kept answers prints under it."""
    return f"{reason}{OWN_NOTE}{own}" if own else reason


def own_note(note: str | None) -> str | None:
    """The note the kept answer's own mail would have carried, if any (`kept_note`)."""
    return note.partition(OWN_NOTE)[2] or None if note else None


_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """`text` as SQLite's `lower` writes it: ASCII letters alone folded."""
    return text.translate(_LOWER)


def case_span(text: str) -> tuple[str, str]:
    """The least and greatest spellings of `text` in ASCII capitals and small letters: a capital
    sorts before its small letter, so every spelling lies between the two."""
    return text.translate(_UPPER), text.translate(_LOWER)


def sender_key(source: str) -> str:
    """The sender a kept answer is mailed, closed and counted under: a stored phone (E.164, its "+")
    as it is; any other sender (an ID, a short code) by its letters in small, as the hourly limit
    holds "PROMO", "Promo" and "promo" as one sender, or each spelling had a digest of its own."""
    return source if source.startswith("+") else ascii_lower(source)


def spellings(source: str, column: str = "source") -> tuple[str, list[str]]:
    """The SQL condition (and its arguments) on `mo.source` for `source`'s answers: a phone's own
    range of an index on `source`; a sender ID's spellings, all between it in capitals and in small
    letters (`case_span`), so that index is still read as a range, not every row."""
    if source.startswith("+"):
        return f"{column} = ?", [source]
    return f"{column} BETWEEN ? AND ? AND lower({column}) = ?", [*case_span(source), ascii_lower(source)]


# `sender_key` in SQL (SQLite's `lower` folds ASCII alone, as `ascii_lower` does).
_KEY = "CASE WHEN {s} GLOB '+*' THEN {s} ELSE lower({s}) END"
# The newest kept answer of a due sender: a phone's group, or all the spellings of a sender ID.
_NEWEST = (
    "CASE WHEN mo.source GLOB '+*' THEN MAX(received_at) ELSE (SELECT MAX(s.received_at)"
    " FROM mo s INDEXED BY mo_kept WHERE s.state = 'throttled' AND s.source BETWEEN upper(mo.source)"
    " AND lower(mo.source) AND lower(s.source) = lower(mo.source)) END"
)


class Kept(NamedTuple):
    """An answer kept past the hourly limit, as its mail lists it."""

    id: int
    conversation_id: int | None
    text: str
    received_at: float
    note: str | None = None  # as kept: the reason, then what the answer's own mail would have said
    destination: str = ""  # the number it was sent to, as the SMSC wrote it


class KeptRepo(ReplyPool):
    """The conversations repository's kept answers (`ConversationsRepo` builds on it)."""

    def mailed_from(self, source: str, since: float, *, any_case: bool = False) -> tuple[int, int, int]:
        """(answers mailed, answers kept for the hourly limit, opt-out words that listed the phone and
        were mailed) from `source` since `since`. Only the first of those is mailed past the limit:
        a STOP no one was told of (no conversation, fallback or inbound address took it) is not that
        first, or the phone's STOP to its conversation later in the hour was kept. Each later one
        counts as an answer mailed (a phone alternating STOP and START, each STOP listing it anew, had
        80 of them in 13 minutes give 70 mails where the limit is 30). The first
        late rest of an answer (`follows`) is that answer, counted once with its first parts; each
        further one is a mail of its own and counts: a phone that opened sets of a 255-part SMS and
        sent one part of each every few minutes had every part mailed, uncounted.

        `any_case`: a sender ID's letters in either case are one sender ("PROMO", "Promo"), or
        writing it anew each time got every SMS of a flood mailed. Read off the index of each
        sender's MOs by time between the ID in capitals and in small letters (every such spelling
        sorts there), as SQLite's `lower` folds ASCII alone. `since` moves back by the steps forward
        of the clock made after it (read once, in the statement): the hour counts the time that
        passed, or a step let a flood's next answers through at once.

        `id > 0` (every row) names that index (`mo_phone_times`, partial on it): without it the count
        went through `mo_copies`, whose number the SMS went to sits between sender and time, and read
        the phone's whole history before each of its answers (27,000 SQLite instructions for a
        phone with 3,000 older MOs; 240 through the phone's MOs of the hour)."""
        where, args = spellings(source) if any_case else ("source = ?", [source])
        # A step back's move under way: the MOs it has not reached yet counted with the step applied.
        pending, moves = stepchunks.mo_still_to_move(self.conn)
        if moves:
            where, args = (
                f"{where} AND received_at - {pending} >= {stepped_since('?')}",
                [*args, *moves, since],
            )
        row = self.conn.execute(
            "SELECT COUNT(*) FILTER (WHERE state IN ('mailed', 'fallback') AND follows IS NULL),"
            " COUNT(*) FILTER (WHERE state IN ('mailed', 'fallback') AND follows IS NOT NULL),"
            " COUNT(DISTINCT follows) FILTER (WHERE state IN ('mailed', 'fallback')),"
            " COUNT(*) FILTER (WHERE state = 'throttled'), COUNT(*) FILTER (WHERE state = 'optout'"
            " AND EXISTS (SELECT 1 FROM outbox o INDEXED BY outbox_mo_ref WHERE o.mo_ref = mo.id))"
            f" FROM mo WHERE {where} AND id > 0 AND received_at >= {stepped_since('?')}",
            (*args, since),
        ).fetchone()
        return row[0] + row[1] - row[2] + max(row[4] - 1, 0), row[3], row[4]

    def kept_due(self, quiet_since: float, since: float, kinds: Sequence[str], limit: int) -> list[str]:
        """The phones with answers kept past the hourly limit since `since` (the reply window), none
        of them kept since `quiet_since` and none of their mails of kept answers (`kinds`) queued
        since: a phone still flooding, or one whose kept answers were mailed within the hour, waits.
        So does one whose last mail said its older ones stay kept (`kept_phones.closed_at`) until it
        keeps a new one. Read off `mo_kept` in phone order, without sorting: only the kept answers of
        the window, never every MO; the last hour's kept mails off `outbox_age`.

        A sender ID is one sender in all its spellings (`sender_key`), as the hourly limit held it:
        due once, under its spelling that sorts first (capitals before small letters), when none of
        them kept a new one within the hour; one spelling quiet while another floods had its own
        digest. Its other spellings are read per group off `mo_kept`, never per row."""
        marks = ",".join("?" * len(kinds))
        first_spelling = (
            "NOT EXISTS (SELECT 1 FROM mo s INDEXED BY mo_kept WHERE s.state = 'throttled'"
            " AND s.received_at > ? AND s.source >= upper(mo.source) AND s.source < mo.source"
            " AND lower(s.source) = lower(mo.source))"
        )
        rows = self.conn.execute(
            "SELECT source FROM mo INDEXED BY mo_kept WHERE state = 'throttled' AND received_at > ?"
            f" AND {_KEY.format(s='source')} NOT IN (SELECT {_KEY.format(s='m.source')}"
            " FROM outbox o JOIN mo m ON m.id = o.mo_ref"
            " WHERE o.state IN ('queued', 'active', 'sent', 'failed') AND o.created_at >= ?"
            f" AND o.kind IN ({marks}))"
            f" GROUP BY source HAVING (source GLOB '+*' OR {first_spelling}) AND {_NEWEST} < ?"
            f" AND {_NEWEST} > COALESCE((SELECT k.closed_at FROM kept_phones k"
            f" WHERE k.source = {_KEY.format(s='mo.source')}), 0)"
            " ORDER BY source LIMIT ?",
            (since, quiet_since, *kinds, since, quiet_since, limit),
        )
        return [r[0] for r in rows]

    def kept_of(self, source: str, since: float, limit: int) -> list[Kept]:
        """The phone's oldest `limit` answers kept past the hourly limit after `since`, off `mo_kept`:
        a phone with 20,000 kept has a mail's worth read, not all of them each hour. A sender ID's
        are those of all its spellings (`spellings`): its range of the index, sorted."""
        where, args = spellings(source)
        rows = self.conn.execute(
            "SELECT id, conversation_id, text, received_at, note, destination FROM mo INDEXED BY mo_kept"
            f" WHERE {where} AND state = 'throttled' AND received_at > ? ORDER BY received_at, id LIMIT ?",
            (*args, since, limit),
        )
        return [Kept(*r) for r in rows]

    def kept_span(self, source: str, since: float, conversation_id: int | None) -> tuple[int, float]:
        """(how many, when the newest came) of one conversation's kept answers from the phone after
        `since`, for a mail that lists only the oldest: the phone's range of `mo_kept`, the
        conversation read per row."""
        where, args = spellings(source)
        row = self.conn.execute(
            f"SELECT COUNT(*), MAX(received_at) FROM mo INDEXED BY mo_kept WHERE {where}"
            " AND state = 'throttled' AND received_at > ? AND conversation_id IS ?",
            (*args, since, conversation_id),
        ).fetchone()
        return int(row[0]), float(row[1] or 0.0)

    def kept_unmatched_spans(self, source: str, since: float) -> list[tuple[str, int, float]]:
        """(number, how many, when the newest came) of the phone's kept answers no conversation took
        after `since`, per number they were sent to: those to an account's own number go to its
        inbound address, a mail per number, the rest together (`kept_span` for a cut read)."""
        where, args = spellings(source)
        rows = self.conn.execute(
            f"SELECT destination, COUNT(*), MAX(received_at) FROM mo INDEXED BY mo_kept WHERE {where}"
            " AND state = 'throttled' AND received_at > ? AND conversation_id IS NULL GROUP BY destination",
            (*args, since),
        )
        return [(str(r[0]), int(r[1]), float(r[2] or 0.0)) for r in rows]

    def kept_phone(self, source: str) -> tuple[int, float | None]:
        """(mails of the phone's kept answers in a row, before when its kept answers stay kept), a
        sender ID's under its small letters (`sender_key`), whichever spelling names it."""
        row = self.conn.execute(
            "SELECT mails, closed_at FROM kept_phones WHERE source = ?", (sender_key(source),)
        ).fetchone()
        return (0, None) if row is None else (int(row[0]), row[1])

    def kept_phone_mailed(self, source: str, mails: int, closed_at: float | None, at: float) -> None:
        """Record a run of the phone's kept mails; `mails` 0 and no `closed_at`: nothing left to count."""
        source = sender_key(source)
        with self.transaction():
            if mails == 0 and closed_at is None:
                self.conn.execute("DELETE FROM kept_phones WHERE source = ?", (source,))
                return
            self.conn.execute(
                "INSERT INTO kept_phones (source, mails, closed_at, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET mails = excluded.mails,"
                " closed_at = COALESCE(excluded.closed_at, closed_at), at = excluded.at",
                (source, mails, closed_at, at),
            )

    def kept_phones_forget(self, before: float) -> None:
        """Phones whose last kept mail is older than the reply window: nothing they name is mailed."""
        with self.transaction():
            self.conn.execute("DELETE FROM kept_phones WHERE at < ?", (before,))

    def answered_in(self, mo_id: int, *, of_its_account: bool = False) -> Conversation | None:
        """The conversation the MO was mailed (or kept) in, if still kept, quoting the SMS the MO
        answers (`as_recorded`), as its mail did: the row has moved on with the user's next
        mail to the phone since. `of_its_account`: only while the row is of the answer's account, for
        a kept answer: one kept before migration 39 may name an id SQLite has since given to another
        company's conversation, as `account_answers` guards the panel. A refused answer's copy takes
        the row whatever its account now (its user moved since): the SMS quoted is the answer's."""
        guard = " AND c.account_id IS m.account_id" if of_its_account else ""
        row = self.conn.execute(
            f"SELECT {_C_COLUMNS}, m.answered_message_id FROM mo m JOIN conversations c"
            f" ON c.id = m.conversation_id{guard} WHERE m.id = ?",
            (mo_id,),
        ).fetchone()
        return as_recorded(self.conn, Conversation(*row[:-1]), row[-1]) if row else None

    def settle_kept(self, ids: Sequence[int], state: str, conv: Conversation | None, note: str) -> int:
        """Kept answers mailed together (or recorded where they would have gone), in the write that
        queues their mail; only those still kept move. `/metrics` counts MOs by their final
        states and never falls: the kept ones stay counted as kept (`purged_counts`), as an MO
        whose mail was refused later stays counted as mailed.

        `conv`: the conversation that takes them now, as their match gave it (`reached.quoting`),
        with the account of the SMS they answer; its row's account is the user's latest mail's."""
        marks = ",".join("?" * len(ids))
        taken = (conv.id, conv.account_id, conv.message_id) if conv is not None else (None, None, None)
        with self.transaction():
            # The answer's own note (`OWN_NOTE` on), which its mail prints, stays after the new one.
            moved = self.conn.execute(
                "UPDATE mo SET state = ?, conversation_id = ?,"
                " note = ? || CASE WHEN instr(note, ?) > 0 THEN substr(note, instr(note, ?)) ELSE '' END,"
                # Billed as it was when it came (`BillingRepo.bill_answer`: an answer to a removed
                # user's SMS is that account's traffic) unless a conversation takes it now.
                " account_id = COALESCE(?, account_id), answered_message_id = ?"
                f" WHERE id IN ({marks}) AND state = 'throttled'",
                (state, taken[0], note, OWN_NOTE, OWN_NOTE, taken[1], taken[2], *ids),
            ).rowcount
            if moved:
                keep_counted(self.conn, "mo", "SELECT '', 'throttled', ?", (moved,))
            return moved

    def kept_mailed(self, source: str, note: str) -> list[Kept]:
        """The kept answers one mail carried: those of the phone whose note starts with its own (of
        a sender ID, in any spelling: one mail carried them all)."""
        where, args = spellings(source)
        rows = self.conn.execute(
            "SELECT id, conversation_id, text, received_at, note, destination FROM mo"
            f" WHERE {where} AND substr(note, 1, ?) = ? ORDER BY received_at, id",
            (*args, len(note), note),
        )
        return [Kept(*r) for r in rows]

    def kept_mailed_without(self, first: int, note: str) -> tuple[str, list[Kept]] | None:
        """(the phone, the answers) one mail carried once its first answer (`first`, whose phone
        named them) is gone: deleted by the retention purge before the others, an hour younger.
        The others came after it: the MOs after `first` in id order (the table's own order, no
        index) up to the first whose note starts with the mail's, then that phone's. None when none
        is left, having read the MOs since `first` (a mail refused or retried after the purge)."""
        row = self.conn.execute(
            "SELECT source FROM mo WHERE id > ? AND substr(note, 1, ?) = ? ORDER BY id LIMIT 1",
            (first, len(note), note),
        ).fetchone()
        return (str(row[0]), self.kept_mailed(row[0], note)) if row else None


def as_recorded(conn: sqlite3.Connection, c: Conversation, message_id: int | None) -> Conversation:
    """The conversation as an answer's mail showed it, from the SMS its MO recorded as answered
    (`mo.answered_message_id`): a copy made later, of a mail the relay refused, quotes what the phone
    answered, not the user's newer SMS the row has moved on to. The row as it is when the MO recorded
    none (settled before migration 64, or its SMS not known then), or that SMS is purged since."""
    if message_id is None:
        return c
    row = conn.execute(
        f"SELECT {reached.SENT} FROM messages m JOIN emails e ON e.id = m.email_id"
        " WHERE m.id = ? AND m.recipient = ?",
        (float("inf"), message_id, c.phone),
    ).fetchone()
    # The user's own (a purge that emptied the table lets SQLite give the id again).
    return (
        reached.quoting(c, reached.Sent(*row)) if row and row[0].casefold() == c.user_email.casefold() else c
    )
