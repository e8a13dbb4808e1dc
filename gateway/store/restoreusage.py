"""What `smsgw restore` takes over of the limits' counters from the database it replaces (attached as
`old`): the SMS parts each user and account was charged since the backup.

A counter counts the parts a user's and an account's mails were charged at acceptance, in the month
and on the day: restored as the backup had them, the SMS sent since (and those carried, still to
send) were counted nowhere, and a user who had used up his day after the backup could send as much
again. A counter only grows (`AccountsRepo.add_usage`), so the larger of the two is the later; one
of a user or account the copy does not have (added after the backup) is left: its id may be
another's after the restore. The notices that a limit was reached go with them, so that none is
sent twice in a period.
"""

from __future__ import annotations

import sqlite3

from gateway.store.restorerows import in_both

# A counter's scope ('user:<id>', 'account:<id>') that is the same user or account in both.
_SAME_SCOPE = (
    "(EXISTS (SELECT 1 FROM main.users u JOIN old.users x ON x.id = u.id AND x.email = u.email"
    " AND x.created_at = u.created_at WHERE o.scope = 'user:' || u.id)"
    " OR EXISTS (SELECT 1 FROM main.accounts a JOIN old.accounts x ON x.id = a.id AND x.name = a.name"
    " AND x.created_at = a.created_at WHERE o.scope = 'account:' || a.id))"
)


def carry_usage(copy: sqlite3.Connection) -> int:
    """The counters that grew since the backup take the replaced database's counts: how many."""
    if not in_both(copy, "usage"):
        return 0
    grown = copy.execute(
        "INSERT INTO main.usage (scope, period, parts) SELECT o.scope, o.period, o.parts FROM old.usage o"
        f" WHERE {_SAME_SCOPE} AND o.parts > COALESCE((SELECT c.parts FROM main.usage c"
        " WHERE c.scope = o.scope AND c.period = o.period), 0)"
        " ON CONFLICT (scope, period) DO UPDATE SET parts = excluded.parts"
    ).rowcount
    if in_both(copy, "limit_notices"):
        copy.execute(
            "INSERT INTO main.limit_notices (scope, period, created_at)"
            f" SELECT o.scope, o.period, o.created_at FROM old.limit_notices o WHERE {_SAME_SCOPE}"
            " ON CONFLICT (scope, period) DO NOTHING"
        )
    return int(grown)
