"""What `smsgw restore` takes over from the database it replaces, into the restored copy before the
copy is put in place.

A backup is older than the database it replaces. Restored as it is, the SMS that waited in it but
went out after it was taken were sent again when the daemon started (the phones got them twice),
and the mail ids handed out since were handed out again (a sender's "queued as 601" then named
another mail). When the database replaced can still be read and is the same database as the
backup's, grown on since, the copy is given what the SMSC and the mail servers were already told:

- a part waiting in the backup that the replaced database shows handed to an SMSC keeps that state,
  its link and SMSC id (so that its receipt still finds it), and its message the replaced state;
  one the replaced database shows cancelled stays cancelled (else the SMS an admin stopped after
  the backup went out at the next start);
  one waiting for its receipt in the backup that the replaced database got takes the receipt's end;
  and the bounces and notices of such messages that the replaced database had not sent yet come
  with them (else the message ended `failed` with its bounce gone: the sender was never told);
- every mail accepted after the backup is carried whole (`gateway.store.restorelater`: its mail,
  messages and parts, their delivery reports; here its notices not sent yet), under its own ids,
  whatever its SMS became. One whose account or user the copy does not have, or whose ids the copy
  holds, is not, and the line lists it;
- an outbox mail waiting in the backup that the replaced database shows sent is sent;
- the mail ids go on after the replaced database's: its newest mail, accepted after the backup and
  not carried (of an account the copy lacks), is kept as a recorded mail with no text (the ids are SQLite's
  rowids, one more than the largest in the table, so a row must hold the place), which also tells
  whoever asks after that id what became of it;
- the long-SMS reference counters continue where the replaced database left them, so that a
  phone does not join a new SMS's segments to the ones sent since the backup;
- the limits' counters grown since (`gateway.store.restoreusage`): the SMS sent since count;
- the opt-out lists as the replaced database has them (`gateway.store.restoreoptouts`): a STOP sent
  since is honoured;
- the phones' answers received or handled since, with their mails (`gateway.store.restoremo`), and
  the features' rows about them (conversations, premium SMS), by the carries the caller gives
  (`gateway.restorecarries`): the store names no feature's table;
- and before all of it, the phones' erasures made since (`smsgw phone forget`), made again on the
  backup's rows by the carries the caller gives first (`gateway.privacy.restorecarry`).

Only rows that are the same row in both are carried: the same id with the same message, mail,
recipient and time, never an id that the other database gave to another.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from gateway.store.idfloors import TABLES, keep_above
from gateway.store.restorelater import carry_later
from gateway.store.restoremo import carry_mo
from gateway.store.restoreoptouts import carry_optouts
from gateway.store.restorerows import shared_columns as _columns
from gateway.store.restoreusage import carry_usage

# Waiting in the backup: the daemon started on it would send them.
_PART_WAITING = "('queued', 'deferred', 'hold', 'active')"
# In the replaced database, handed to an SMSC: accepted (submitted_at set), or answered by it; or
# cancelled (by an admin, or with a failed part of its message), which must not go either.
_PART_HANDED = (
    "(o.state = 'cancelled' OR (o.state IN ('submitted', 'delivered', 'unreported', 'failed', 'expired')"
    " AND (o.submitted_at IS NOT NULL OR o.link IS NOT NULL)))"
)
# Waiting for its receipt in the backup, which the replaced database got: the same SMSC id on the
# same link, and an end. Else it stayed `submitted` until its validity and a day, then `unreported`.
_PART_REPORTED = (
    "c.state = 'submitted' AND o.state IN ('delivered', 'unreported', 'failed', 'expired')"
    " AND o.link IS c.link AND o.smsc_id IS c.smsc_id"
)
_SAME_PART = (
    "c.id = o.id AND c.message_id = o.message_id AND c.seq = o.seq AND c.destination = o.destination"
    # The same mail, received at the same time: a clock step back moves the acceptance time of the SMS
    # of its last seconds (`senttimes`), never a mail's receipt.
    " AND (SELECT e.received_at FROM messages m JOIN emails e ON e.id = m.email_id WHERE m.id = c.message_id)"
    " = (SELECT e.received_at FROM old.messages m JOIN old.emails e ON e.id = m.email_id"
    " WHERE m.id = o.message_id)"
)
# `resent_after`: a part sent again since the backup, after a submit that went unanswered, that the
# phone may have twice (migration 74); its message page said so before the restore.
_PART_COLUMNS = (
    "state",
    "attempts",
    "link",
    "smsc_id",
    "submitted_at",
    "done_at",
    "error",
    "via",
    "resent_after",
)
_OUTBOX_WAITING = "('queued', 'active', 'failed')"
_SAME_MAIL = "c.id = o.id AND c.kind = o.kind AND c.rcpt = o.rcpt AND c.created_at = o.created_at"
# What the recorded mail holding the place of the newest id says, as `smsgw mail show` prints it.
_NAMED = {"messages": "SMS", "outbox": "outbox mail"}  # the ids' tables as `queue list`, `outbox list` say
GONE_WITH_RESTORE = "accepted after the backup that was restored; it went with the database replaced"


@dataclass(frozen=True)
class Carried:
    sms: int  # messages, not parts: a 3-part SMS is one to whoever reads the line
    cancelled: int  # messages cancelled since, none of whose parts went
    reports: int  # receipts the replaced database got for SMS the backup shows waiting for one
    mails: int
    notices: int  # bounces and notices of carried messages, not sent yet in the replaced database
    later: list[int]  # mails accepted after the backup, carried
    left: list[int]  # such mails that could not be carried: their SMS not sent do not go
    ids_after: int | None  # the replaced database's newest mail id, when it was newer than the copy's
    answers: int = 0  # answers (MOs) received after the backup
    handled: int = 0  # answers of the backup handled since (mailed, kept, refused)
    features: list[str] = field(default_factory=list)  # what the features carried, said by each
    counters: int = 0  # the limits' counters (a user's or account's month or day) that grew since
    optouts: int = 0  # opt-out entries added or removed since (a phone's STOP or START, an admin's)
    above: dict[str, int] = field(default_factory=dict)  # the ids new rows go past, by table (`idfloors`)
    # The accounts added after the backup, by name: none is carried, nor anything of theirs.
    accounts_left: list[str] = field(default_factory=list)

    def said(self) -> str:
        what = f"{self.sms} SMS already sent, {self.cancelled} cancelled, {self.mails} mails already sent"
        if self.reports:
            what += f", {self.reports} delivery reports"
        if self.notices:
            what += f", {self.notices} bounces and notices still to send"
        if self.later:
            what += f", {len(self.later)} mails accepted after the backup (ids {id_ranges(self.later)})"
        if self.answers:
            what += f", {self.answers} answers received since"
        if self.handled:
            what += f", {self.handled} answers handled since"
        what += "".join(f", {said}" for said in self.features)
        if self.counters:
            what += f", {self.counters} usage counters"
        if self.optouts:
            what += f", {self.optouts} opt-outs added or removed since"
        if self.accounts_left:
            what += f"; accounts added after the backup not carried ({', '.join(self.accounts_left)}):"
            what += " add them again, with their users and premium services; their mails, conversations"
            what += " and premium SMS since stay in the database replaced"
        if self.left:
            what += f"; {len(self.left)} mails accepted after the backup could not be carried"
            what += f" (ids {id_ranges(self.left)}): their SMS not sent do not go, their senders got 250"
        if self.ids_after is not None:
            what += f"; ids continue after {self.ids_after}"
        if above := [f"{_NAMED[t]} ids after {n}" for t, n in self.above.items()]:
            what += f"; {', '.join(above)}"
        return f"carried from the replaced database: {what}"


# A feature's carry (`gateway.restorecarries`): its own rows, after the store's, the MOs carried in
# `temp.carried_mo` (or before them, as `first`); what it carried in a few words for the line, or None.
FeatureCarry = Callable[[sqlite3.Connection], "str | None"]


def carry(
    copy: sqlite3.Connection,
    replaced: Path | None,
    features: Sequence[FeatureCarry] = (),
    first: Sequence[FeatureCarry] = (),
) -> Carried | str:
    """Carry into `copy` (not committed: the caller commits) what `replaced` knows and the copy does
    not, the features' rows by `features`; else why nothing was carried, in one line. Never raises
    for the replaced database's sake: a restore is most often made because that database is damaged.
    `first` run before the store's carries: what the replaced database erased since the backup is
    erased in the backup's rows then, and the rows carried after it come as that database has them."""
    if replaced is None or not replaced.is_file():
        return "nothing carried from the replaced database: there was none"
    uri = f"file:{quote(str(replaced.resolve()))}?mode=ro"
    try:
        copy.execute("ATTACH DATABASE ? AS old", (uri,))
    except sqlite3.Error as exc:
        return f"nothing carried from the replaced database: it cannot be read ({_plain(exc, uri)})"
    try:
        why = _unusable(copy)
        if why is not None:
            return f"nothing carried from the replaced database: {why}"
        (mails_above,) = copy.execute("SELECT COALESCE(MAX(id), 0) FROM main.outbox").fetchone()
        copy.execute("SAVEPOINT carry")
        try:
            erased = [s for s in (erasure(copy) for erasure in first) if s]
            sms, cancelled, reports, ended = _carry_parts(copy)
            mails = _carry_mails(copy)
            later, left = carry_later(copy)
            notices = carry_notices(copy, ended, later)
            answers = carry_mo(copy, mails_above)
            counters = carry_usage(copy)
            optouts = carry_optouts(copy)
            said = [*erased, *(s for s in (feature(copy) for feature in features) if s)]
            # After the features': the billing mails they carry hold their own ids.
            above = {t: n for t in TABLES if (n := keep_above(copy, t)) is not None}
            copy.execute("DROP TABLE temp.carried_mo")
            carried = Carried(
                sms, cancelled, reports, mails, notices, later, left, _continue_ids(copy),
                answers.answers, answers.handled, said, counters,
                optouts=optouts, above=above, accounts_left=_accounts_left(copy),
            )  # fmt: skip
        except sqlite3.DatabaseError as exc:
            copy.execute("ROLLBACK TO carry")
            if _unwritten(exc):
                raise  # the copy could not be written: the restore stops, saying so
            return f"nothing carried from the replaced database: it cannot be read whole ({_plain(exc, uri)})"
        finally:
            copy.execute("RELEASE carry")
        return carried
    except sqlite3.DatabaseError as exc:
        if _unwritten(exc):  # not swallowed here: the restore went on, and the SMS sent since went again
            raise
        return f"nothing carried from the replaced database: it cannot be read ({_plain(exc, uri)})"
    finally:
        copy.execute("DETACH DATABASE old")


def _accounts_left(copy: sqlite3.Connection) -> list[str]:
    """The replaced database's accounts the copy does not have (added after the backup): a restore
    carries no account, its users and settings being the backup's; their names, for the admin to add
    them again. One renamed since is the copy's (the same id and creation time)."""
    return [
        str(r[0])
        for r in copy.execute(
            "SELECT o.name FROM old.accounts o WHERE NOT EXISTS (SELECT 1 FROM main.accounts c"
            " WHERE c.id = o.id AND c.created_at = o.created_at) ORDER BY o.id"
        )
    ]


def _unwritten(exc: sqlite3.DatabaseError) -> bool:
    """Whether the copy could not be written (a full disk, an I/O error): the restore stops then,
    rather than going on with nothing carried."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)


def _plain(exc: sqlite3.Error, uri: str) -> str:
    """SQLite's reason without the file's path, which SQLite adds to some: the line goes into the
    audit trail too, shown in the panel, where a path names the server's directories."""
    return str(exc).replace(f": {uri}", "").replace(uri, "the file")


def _unusable(copy: sqlite3.Connection) -> str | None:
    """Why the replaced database is not one to carry from: damaged, not smsgw's, or not the same
    database as the backup's (another installation's, or one started afresh since)."""
    (check,) = copy.execute("PRAGMA old.quick_check(1)").fetchone()
    if check != "ok":  # one line, without the attached database's name SQLite puts first
        return f"it is damaged ({' '.join(str(check).replace('*** in database old ***', '').split())})"
    tables = {r[0] for r in copy.execute("SELECT name FROM old.sqlite_master WHERE type = 'table'")}
    if not {"schema_version", "emails", "messages", "parts", "outbox", "accounts"} <= tables:
        return "it is no smsgw database"
    # The backup's newest mail, or else its first account, found as it is in the replaced database:
    # the same database grown on. Retention may have purged that mail since, and then nothing is
    # carried rather than guessed.
    anchor = copy.execute(
        "SELECT 1 FROM emails c JOIN old.emails o ON o.id = c.id AND o.received_at = c.received_at"
        " WHERE c.id = (SELECT MAX(id) FROM emails)"
    ).fetchone()
    if anchor is None and copy.execute("SELECT 1 FROM emails LIMIT 1").fetchone() is None:
        anchor = copy.execute(
            "SELECT 1 FROM accounts c JOIN old.accounts o ON o.id = c.id AND o.name = c.name"
            " AND o.created_at = c.created_at WHERE c.id = (SELECT MIN(id) FROM accounts)"
        ).fetchone()
    if anchor is None:
        return "it is not the same database as the backup's (its newest mail or first account differs)"
    return None


def _carry_parts(copy: sqlite3.Connection) -> tuple[int, int, int, list[int]]:
    """Parts the replaced database knows more of: (messages sent since the backup, messages cancelled
    since with none of their parts sent, parts reported since, the messages whose state was taken)."""
    both = _columns(copy, "parts")
    cols = [c for c in _PART_COLUMNS if c in both]
    ours = {r[1] for r in copy.execute("PRAGMA main.table_info(parts)")}  # the claims, the copy's alone
    which = f"(c.state IN {_PART_WAITING} AND {_PART_HANDED}) OR ({_PART_REPORTED})"
    rows = copy.execute(
        f"SELECT o.id, o.message_id, c.state = 'submitted', o.state = 'cancelled',"
        f" {', '.join('o.' + c for c in cols)}"
        f" FROM parts c JOIN old.parts o ON {_SAME_PART} WHERE {which}"
    ).fetchall()
    claims = ("claimed_at", "last_claimed_at", "prior_claimed_at")
    unclaimed = "".join(f", {c} = NULL" for c in claims if c in ours)
    copy.executemany(
        f"UPDATE parts SET {', '.join(c + ' = ?' for c in cols)}{unclaimed} WHERE id = ?",
        [(*r[4:], r[0]) for r in rows],
    )
    copy.executemany(
        "UPDATE messages SET (state, reason, finished_at) ="
        " (SELECT state, reason, finished_at FROM old.messages WHERE id = ?) WHERE id = ?",
        [(m, m) for m in sorted({r[1] for r in rows})],
    )
    sent = {r[1] for r in rows if not r[2] and not r[3]}
    cancelled = {r[1] for r in rows if r[3]} - sent
    return len(sent), len(cancelled), sum(r[2] for r in rows), sorted({r[1] for r in rows})


def _carry_mails(copy: sqlite3.Connection) -> int:
    rows = copy.execute(
        f"SELECT o.id, o.attempts, o.last_error, o.sent_at FROM outbox c JOIN old.outbox o ON {_SAME_MAIL}"
        f" WHERE c.state IN {_OUTBOX_WAITING} AND o.state = 'sent'"
    ).fetchall()
    copy.executemany(
        "UPDATE outbox SET state = 'sent', attempts = ?, last_error = ?, sent_at = ? WHERE id = ?",
        [(*r[1:], r[0]) for r in rows],
    )
    return len(rows)


def carry_notices(copy: sqlite3.Connection, messages: list[int], mails: list[int]) -> int:
    """The replaced database's unsent outbox rows (bounces, receipts, confirmations; one naming several
    SMS by its mail) about `messages`, whose state was carried, and about the carried `mails`. A row the
    copy has (the same id, recipient and time) takes the replaced one's state, as it may have grown
    into a group since; any other goes in under its own id when the copy has it free, else a new one."""
    if not messages and not mails:
        return 0
    copy.execute("CREATE TEMP TABLE IF NOT EXISTS carry_about (message INTEGER, mail INTEGER)")
    copy.execute("DELETE FROM temp.carry_about")
    copy.executemany("INSERT INTO temp.carry_about (message) VALUES (?)", [(m,) for m in messages])
    copy.executemany(
        "INSERT INTO temp.carry_about (message) SELECT id FROM old.messages WHERE email_id = ?",
        [(m,) for m in mails],
    )
    copy.execute(
        "INSERT INTO temp.carry_about (mail) SELECT DISTINCT email_id FROM old.messages WHERE id IN"
        " (SELECT message FROM temp.carry_about)"
    )
    cols = [c for c in _columns(copy, "outbox") if c != "id"]
    rows = copy.execute(
        f"SELECT o.id, EXISTS (SELECT 1 FROM main.outbox c WHERE c.id = o.id AND c.rcpt = o.rcpt"
        f" AND c.created_at = o.created_at), {', '.join('o.' + c for c in cols)} FROM old.outbox o"
        " WHERE o.state != 'sent' AND (o.message_ref IN (SELECT message FROM temp.carry_about)"
        " OR (o.message_ref IS NULL AND o.email_ref IN (SELECT mail FROM temp.carry_about))) ORDER BY o.id"
    ).fetchall()
    copy.execute("DROP TABLE temp.carry_about")
    taken = {r[0] for r in copy.execute("SELECT id FROM main.outbox WHERE id IN (SELECT id FROM old.outbox)")}
    values = ", ".join("?" for _ in cols)
    same = [r for r in rows if r[1]]
    copy.executemany(
        f"UPDATE main.outbox SET ({', '.join(cols)}) = ({values}) WHERE id = ? AND state != 'sent'",
        [(*r[2:], r[0]) for r in same],
    )
    new = [r for r in rows if not r[1]]
    # Those whose id is free first: a new id, one more than the largest, may be another's own.
    for row in sorted(new, key=lambda r: r[0] in taken):
        copy.execute(
            f"INSERT INTO main.outbox (id, {', '.join(cols)}) VALUES (?, {values})",
            (None if row[0] in taken else row[0], *row[2:]),
        )
    return len(new)


def id_ranges(ids: list[int]) -> str:
    """`148-170, 175`: the ids of up to some hundreds of mails said in a line."""
    spans: list[list[int]] = []
    for i in sorted(ids):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _continue_ids(copy: sqlite3.Connection) -> int | None:
    """Continue the long-SMS references and the mail ids after the replaced database's; the newest
    mail id when the copy's was lower (the one a sender was told last)."""
    copy.execute(
        "INSERT INTO main.concat_refs (destination, next_ref)"
        " SELECT destination, next_ref FROM old.concat_refs WHERE true"
        " ON CONFLICT (destination) DO UPDATE SET next_ref = excluded.next_ref"
    )
    (ours,) = copy.execute("SELECT COALESCE(MAX(id), 0) FROM emails").fetchone()
    newest = copy.execute(
        "SELECT id, mail_from, client_ip, header_message_id, subject, received_at FROM old.emails"
        " WHERE id = (SELECT MAX(id) FROM old.emails) AND id > ?",
        (ours,),
    ).fetchone()
    if newest is None:
        return None
    copy.execute(
        "INSERT INTO emails (id, mail_from, client_ip, header_message_id, subject, text, automatic,"
        " received_at) VALUES (?, ?, ?, ?, ?, '', ?, ?)",
        (*newest[:5], GONE_WITH_RESTORE, newest[5]),
    )
    return int(newest[0])
