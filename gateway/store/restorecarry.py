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
- an outbox mail waiting in the backup that the replaced database shows sent is sent;
- the mail ids go on after the replaced database's: its newest mail, accepted after the backup and
  gone with the restore, is kept as a recorded mail with no text (the ids are SQLite's rowids, one
  more than the largest in the table, so a row must hold the place), which also tells whoever asks
  after that id what became of it;
- the long-SMS reference counters continue where the replaced database left them, so that a
  phone does not join a new SMS's segments to the ones sent since the backup.

Only rows that are the same row in both are carried: the same id with the same message, mail,
recipient and time, never an id that the other database gave to another.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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
    " AND (SELECT created_at FROM messages WHERE id = c.message_id)"
    " = (SELECT created_at FROM old.messages WHERE id = o.message_id)"
)
_PART_COLUMNS = ("state", "attempts", "link", "smsc_id", "submitted_at", "done_at", "error", "via")
_OUTBOX_WAITING = "('queued', 'active', 'failed')"
_SAME_MAIL = "c.id = o.id AND c.kind = o.kind AND c.rcpt = o.rcpt AND c.created_at = o.created_at"
# What the recorded mail holding the place of the newest id says, as `smsgw mail show` prints it.
GONE_WITH_RESTORE = "accepted after the backup that was restored; it went with the database replaced"


@dataclass(frozen=True)
class Carried:
    sms: int  # messages, not parts: a 3-part SMS is one to whoever reads the line
    cancelled: int  # messages cancelled since, none of whose parts went
    reports: int  # receipts the replaced database got for SMS the backup shows waiting for one
    mails: int
    ids_after: int | None  # the replaced database's newest mail id, when it was newer than the copy's

    def said(self) -> str:
        what = f"{self.sms} SMS already sent, {self.cancelled} cancelled, {self.mails} mails already sent"
        if self.reports:
            what += f", {self.reports} delivery reports"
        if self.ids_after is not None:
            what += f"; ids continue after {self.ids_after}"
        return f"carried from the replaced database: {what}"


def carry(copy: sqlite3.Connection, replaced: Path | None) -> Carried | str:
    """Carry into `copy` (not committed: the caller commits) what `replaced` knows and the copy does
    not; else why nothing was carried, in one line. Never raises for the replaced database's sake:
    a restore is most often made because that database is damaged."""
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
        copy.execute("SAVEPOINT carry")
        try:
            carried = Carried(*_carry_parts(copy), _carry_mails(copy), _continue_ids(copy))
        except sqlite3.DatabaseError as exc:
            copy.execute("ROLLBACK TO carry")
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
                raise  # the copy could not be written: the restore stops, saying so
            return f"nothing carried from the replaced database: it cannot be read whole ({_plain(exc, uri)})"
        finally:
            copy.execute("RELEASE carry")
        return carried
    except sqlite3.DatabaseError as exc:
        return f"nothing carried from the replaced database: it cannot be read ({_plain(exc, uri)})"
    finally:
        copy.execute("DETACH DATABASE old")


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


def _carry_parts(copy: sqlite3.Connection) -> tuple[int, int, int]:
    """Parts the replaced database knows more of: (messages sent since the backup, messages cancelled
    since with none of their parts sent, parts reported since)."""
    # Only the columns both have: a backup from before an upgrade lacks the ones added since (the
    # daemon's start migrates the copy after).
    ours = {r[1] for r in copy.execute("PRAGMA main.table_info(parts)")}
    theirs = {r[1] for r in copy.execute("PRAGMA old.table_info(parts)")}
    cols = [c for c in _PART_COLUMNS if c in ours & theirs]
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
    return len(sent), len(cancelled), sum(r[2] for r in rows)


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
