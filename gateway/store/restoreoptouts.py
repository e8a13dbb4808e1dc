"""What `smsgw restore` takes over of the opt-outs from the database it replaces (attached as `old`):
the phones' STOP and START, and the admins' adds and removes, since the backup.

A phone that sent STOP after the backup was taken is owed no more SMS (R-4.5): restored as the backup
had the list, every SMS to it was sent again as if it had never asked, and `optout list` did not show
it. One that sent START since, or an admin's removal, is as much the later word. So the shared list
is the replaced database's whole, as the later of the same database; an account's own list is too,
for each account the copy has (one added after the backup is not carried, nor its list). An account
removed since keeps its list with it in the copy, as the copy keeps the account.
"""

from __future__ import annotations

import sqlite3

from gateway.store.restorerows import in_both, same_account, shared_columns

_SHARED_CHANGED = (
    "SELECT (SELECT COUNT(*) FROM old.optouts o WHERE NOT EXISTS (SELECT 1 FROM main.optouts c"
    " WHERE c.number = o.number AND c.source IS o.source)) + (SELECT COUNT(*) FROM main.optouts c"
    " WHERE NOT EXISTS (SELECT 1 FROM old.optouts o WHERE o.number = c.number))"
)
# An account's entry on one side and not on the other, of the accounts in both.
_ACCOUNTS_CHANGED = (
    "SELECT (SELECT COUNT(*) FROM old.account_optouts o WHERE {o} AND NOT EXISTS (SELECT 1"
    " FROM main.account_optouts c WHERE c.account_id = o.account_id AND c.number = o.number))"
    " + (SELECT COUNT(*) FROM main.account_optouts c WHERE {c} AND NOT EXISTS (SELECT 1"
    " FROM old.account_optouts o WHERE o.account_id = c.account_id AND o.number = c.number))"
).format(o=same_account("o.account_id"), c=same_account("c.account_id"))


def carry_optouts(copy: sqlite3.Connection) -> int:
    """The opt-out lists as the replaced database has them: how many entries were added or removed
    since the backup."""
    changed = 0
    if in_both(copy, "optouts"):
        (changed,) = copy.execute(_SHARED_CHANGED).fetchone()
        if changed:
            cols = ", ".join(shared_columns(copy, "optouts"))
            copy.execute("DELETE FROM main.optouts")
            copy.execute(f"INSERT INTO main.optouts ({cols}) SELECT {cols} FROM old.optouts")
    if in_both(copy, "account_optouts"):
        (theirs,) = copy.execute(_ACCOUNTS_CHANGED).fetchone()
        if theirs:
            cols = ", ".join(c for c in shared_columns(copy, "account_optouts") if c != "id")
            copy.execute(f"DELETE FROM main.account_optouts WHERE {same_account('account_id')}")
            copy.execute(
                f"INSERT INTO main.account_optouts ({cols}) SELECT {cols} FROM old.account_optouts"
                f" WHERE {same_account('account_id')}"
            )
        changed += theirs
    return int(changed)
