"""What `smsgw restore` takes over of the phones' answers (MOs) from the database it replaces.

An MO is acknowledged to the SMSC in the write that stores it: the SMSC never delivers it again. So
an answer received after the backup, restored without, was lost, its mail not sent yet (the relay
down) gone with it; and one the backup shows waiting (kept past the hourly limit per phone, waiting
for the SMSC's answer to a submit, a premium SMS of a service not confirmed yet), mailed since, was
mailed again when the daemon started on the copy. So:

- an MO received after the backup is carried, with its mails, sent or not (a mail not sent goes once,
  a mail sent is the record `smsgw mo` and the hourly limit read), and the segments of a long text
  still waiting for the rest (the rest joins them as before);
- an MO of the backup handled since takes the replaced row (its state, note, conversation), and the
  mails queued for it since come with it;
- an MO's account the copy does not have (added after the backup) is dropped from the MO: its id may
  be another account's after the restore.

The ids of the MOs carried are left in `temp.carried_mo` for the features' carries, which move their
own rows about them (`gateway.restorecarries`): the store names no feature's table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.store.restorerows import add_later, same_account, shared_columns, take_changed

# The same MO in both: nothing of these changes once it is stored (`phone forget` erases the
# source and text, a clock step moves the times).
_SAME_MO = (
    "c.id = o.id AND c.link = o.link AND c.destination = o.destination AND c.data_coding = o.data_coding"
    " AND c.concat_ref IS o.concat_ref AND c.concat_total IS o.concat_total AND c.concat_seq IS o.concat_seq"
)
_SAME_MAIL = "c.id = o.id AND c.kind = o.kind AND c.rcpt = o.rcpt AND c.created_at = o.created_at"
# Rows that are no answer of their own: a long text's segments and the copies an SMSC delivered again.
_NO_ANSWER = "('segment', 'joined', 'duplicate')"
_UNSENT = "('queued', 'active', 'failed')"


@dataclass(frozen=True)
class MoCarried:
    answers: int  # whole MOs received after the backup
    handled: int  # MOs of the backup whose state changed since (mailed, kept, refused...)
    mails: int  # their mails the copy did not have


def carry_mo(copy: sqlite3.Connection, mails_above: int) -> MoCarried:
    """`mails_above`: the copy's largest outbox id before the restore carried any (those above are
    added since)."""
    copy.execute("CREATE TEMP TABLE IF NOT EXISTS carried_mo (id INTEGER PRIMARY KEY)")
    copy.execute("DELETE FROM temp.carried_mo")
    (handled,) = copy.execute(
        f"SELECT COUNT(*) FROM main.mo c JOIN old.mo o ON {_SAME_MO} WHERE c.state IS NOT o.state"
    ).fetchone()
    changed = take_changed(copy, "mo", _SAME_MO)
    (top,) = copy.execute("SELECT COALESCE(MAX(id), 0) FROM main.mo").fetchone()
    added = add_later(copy, "mo")
    if added and "account_id" in shared_columns(copy, "mo"):
        copy.execute(
            f"UPDATE main.mo SET account_id = NULL WHERE id > ? AND NOT {same_account('account_id')}", (top,)
        )
    copy.executemany("INSERT INTO temp.carried_mo (id) VALUES (?)", [(i,) for i in (*changed, *added)])
    (answers,) = copy.execute(
        f"SELECT COUNT(*) FROM main.mo WHERE id > ? AND state NOT IN {_NO_ANSWER}", (top,)
    ).fetchone()
    return MoCarried(int(answers), int(handled), _carry_mails(copy, mails_above))


def _carry_mails(copy: sqlite3.Connection, above: int) -> int:
    """The MOs' mails: one the copy has takes the replaced one's state; one added since goes in under
    its own id when the copy has it free, else a new one (a mail of another's may hold it)."""
    if "mo_ref" not in shared_columns(copy, "outbox"):
        return 0
    # Of any MO the copy holds now: a premium SMS mailed once its service was confirmed leaves its MO
    # row as it was (the vote's own record moves, `gateway.premium.restorecarry`).
    about = "o.mo_ref IN (SELECT id FROM main.mo)"
    # Only a mail not sent in the copy still changes (read off its state's index, not every mail kept).
    take_changed(copy, "outbox", _SAME_MAIL, f"c.state IN {_UNSENT} AND {about}")
    cols = [c for c in shared_columns(copy, "outbox") if c != "id"]
    rows = copy.execute(
        f"SELECT o.id, EXISTS (SELECT 1 FROM main.outbox c WHERE c.id = o.id),"
        f" {', '.join('o.' + c for c in cols)}"
        f" FROM old.outbox o WHERE o.id > ? AND {about}"
        f" AND NOT EXISTS (SELECT 1 FROM main.outbox c WHERE {_SAME_MAIL}) ORDER BY o.id",
        (above,),
    ).fetchall()
    values = ", ".join("?" for _ in cols)
    # Those whose id is free first: a new id, one more than the largest, may be another's own.
    for row in sorted(rows, key=lambda r: r[1]):
        copy.execute(
            f"INSERT INTO main.outbox (id, {', '.join(cols)}) VALUES (?, {values})",
            (None if row[1] else row[0], *row[2:]),
        )
    return len(rows)
