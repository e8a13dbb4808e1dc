"""What `smsgw restore` takes over of the phones' erasures (`smsgw phone forget`) from the database it
replaces (attached as `old`), before the store's carries (`gateway.restorecarries`).

An erasure at a phone's request made after the backup was taken erased the texts the database then
held: the backup holds them still. Restored as it is, the SMS sent to the phone and received from it
came back with their texts, their mails and notices, its conversations and kept answers: the erasure,
which the audit trail shows made, was undone without a word. So each erasure the replaced database's
audit trail records after the backup's newest row is made again on the copy, on what the backup
brings back, before anything is carried: the rows carried after it are as the replaced database has
them, erased where they were then, and what reached the gateway from or for the phone after the
erasure is kept, as it was. The erasure's row in the audit trail is carried with it.

A backup from before an upgrade lacks columns the erasure reads (the daemon's start migrates it): an
erasure that cannot be made on it is said in the restore's line, with the command to make it again
once the daemon has started.
"""

from __future__ import annotations

import re
import sqlite3

from gateway.privacy.erasure import PhoneErasure
from gateway.store.restorerows import in_both, shared_columns

ACTION = "phone.forget"  # the audit row of `smsgw phone forget` (`gateway.privacy.cli`)
_NUMBER = re.compile(r"\+\d{2,15}")  # the E.164 form its detail starts with


def carry(copy: sqlite3.Connection) -> str | None:
    """The erasures made since the backup, made again on the copy, and their audit rows; said for
    the restore's line."""
    if not in_both(copy, "audit"):  # a backup from before the audit trail
        return None
    cols = shared_columns(copy, "audit")
    rows = copy.execute(
        f"SELECT {', '.join(cols)} FROM old.audit WHERE id > (SELECT COALESCE(MAX(id), 0) FROM main.audit)"
        " AND action = ? ORDER BY id",
        (ACTION,),
    ).fetchall()
    if not rows:
        return None
    detail = cols.index("detail")
    numbers = list(dict.fromkeys(m[0] for r in rows if (m := _NUMBER.match(r[detail] or ""))))
    # The pages the texts leave zeroed in the copy, as the erasure does in the live database.
    copy.execute("PRAGMA main.secure_delete = ON")
    left = []
    for number in numbers:
        copy.execute("SAVEPOINT erasure")
        try:
            PhoneErasure(copy, number).erase()
        except sqlite3.OperationalError:  # a column the backup's schema has not got yet
            copy.execute("ROLLBACK TO erasure")
            left.append(number)
        finally:
            copy.execute("RELEASE erasure")
    copy.executemany(
        f"INSERT INTO main.audit ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", rows
    )
    said = (
        f"{len(numbers) - len(left)} phone erasures made since, made again"
        if len(left) < len(numbers)
        else ""
    )
    if left:
        again = "; ".join(f"`smsgw phone forget --yes {n}`" for n in left)
        said += (", " if said else "") + (
            f"{len(left)} phone erasures made since not made again (a backup from before an upgrade):"
            f" once the daemon has started, run {again}"
        )
    return said
