"""What `smsgw restore` takes over of the conversations from the database it replaces (attached as
`old`), after the store's carries (`gateway.restorecarries`). Here because the conversations are this
package's tables, which the store does not name (`tests/test_feature_boundaries.py`).

A conversation began or moved on by an SMS the phone got after the backup must route its answers as
the replaced database did: restored as the backup had it, an answer to that SMS went to the user of an
older one, or to the fallback address. The answers kept past the hourly limit per phone are told by
`kept_phones` as the replaced database left it, which the MOs' states carried fit.
"""

from __future__ import annotations

import sqlite3

from gateway.store.restorerows import add_later, in_both, same_account, shared_columns, take_changed

# The same conversation in both: its phone, our number and its user never change (a clock step moves
# its start).
_SAME = "c.id = o.id AND c.phone = o.phone AND c.number = o.number AND c.user_email = o.user_email"


def carry(copy: sqlite3.Connection) -> str | None:
    """The conversations changed or begun since the backup (one of an account the copy lacks stays
    out, as the account and its mails do: its id may be another's after the restore, and the line
    counts it), the carried MOs' links to those left out undone, and the phones' kept answers'
    record. What was carried, and what was not, said for the restore's line."""
    changed = take_changed(copy, "conversations", _SAME)
    (top,) = copy.execute("SELECT COALESCE(MAX(id), 0) FROM main.conversations").fetchone()
    added = add_later(copy, "conversations", same_account("o.account_id"))
    (left,) = copy.execute(
        f"SELECT COUNT(*) FROM old.conversations o WHERE o.id > ? AND NOT {same_account('o.account_id')}",
        (top,),
    ).fetchone()
    if "conversation_id" in shared_columns(copy, "mo"):
        copy.execute(
            "UPDATE main.mo SET conversation_id = NULL WHERE id IN (SELECT id FROM temp.carried_mo)"
            " AND conversation_id NOT IN (SELECT id FROM main.conversations)"
        )
    if in_both(copy, "kept_phones"):
        copy.execute("DELETE FROM main.kept_phones")
        copy.execute(
            "INSERT INTO main.kept_phones (source, mails, closed_at, at)"
            " SELECT source, mails, closed_at, at FROM old.kept_phones"
        )
    moved = len(changed) + len(added)
    said = [f"{moved} conversations"] if moved else []
    if left:  # the line tells the admin where the phones' answers to those SMS go now
        said.append(
            f"{left} conversations of an account the backup lacks not carried (the phones' answers to"
            " them go to the fallback address)"
        )
    return ", ".join(said) or None
