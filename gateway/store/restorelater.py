"""The mail `smsgw restore` takes over whole from the database it replaces (attached as `old`): every
mail accepted after the backup, whatever its SMS became since.

Its sender got `250`. Restored without it, SMS still to send never went and no one said so, and
those gone since were gone from `queue list` and the bills, from the count of identical SMS to a
phone in a day (a fourth went) and from the Message-IDs a client's retry is known by (the retry was
sent again). Its usage is not added: the counters take the replaced database's (`restoreusage`),
which counted it at acceptance.
"""

from __future__ import annotations

import sqlite3

from gateway.store.restorerows import shared_columns

# A mail's account or user that is not the copy's (added after the backup, or another since): its id
# may be another's after the restore.
_FOREIGN = (
    " ((e.account_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM main.accounts a JOIN old.accounts o"
    " ON o.id = a.id AND o.name = a.name AND o.created_at = a.created_at WHERE a.id = e.account_id))"
    " OR (e.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM main.users u JOIN old.users o"
    " ON o.id = u.id AND o.email = u.email AND o.created_at = u.created_at WHERE u.id = e.user_id)))"
)
_MESSAGES = "message_id IN (SELECT id FROM old.messages WHERE email_id {})"
# What of a mail is copied, by table: the rows of the mails `{}` admits.
_ROWS = (
    ("emails", "id {}"),
    ("messages", "email_id {}"),
    ("parts", _MESSAGES),
    ("dlrs", f"part_id IN (SELECT id FROM old.parts WHERE {_MESSAGES})"),
)


def carry_later(copy: sqlite3.Connection) -> tuple[list[int], list[int]]:
    """The mails accepted after the backup, copied whole into the copy: (those carried, those that
    could not be). Their ids are above the copy's newest, as SQLite gave them after it; one whose
    account or user is not the copy's, or whose message or part ids the copy holds, is left rather
    than joined to another's rows. All in a few statements; mail by mail only when one of them
    cannot go (some thousands a minute since the backup: one statement a mail took seconds)."""
    (ours,) = copy.execute("SELECT COALESCE(MAX(id), 0) FROM emails").fetchone()
    found = copy.execute(
        f"SELECT e.id, {_FOREIGN} FROM old.emails e WHERE e.id > ? ORDER BY e.id", (ours,)
    ).fetchall()
    left = [int(r[0]) for r in found if r[1]]
    mails = [int(r[0]) for r in found if not r[1]]
    if not mails:
        return [], left
    cols = {t: shared_columns(copy, t) for t, _ in _ROWS}
    # A receipt goes under a new id: no other row names one.
    cols["dlrs"] = [c for c in cols["dlrs"] if c != "id"]
    copy.execute("CREATE TEMP TABLE IF NOT EXISTS later_mails (id INTEGER PRIMARY KEY)")
    copy.execute("DELETE FROM temp.later_mails")
    copy.executemany("INSERT INTO temp.later_mails (id) VALUES (?)", [(m,) for m in mails])
    try:
        if _copied(copy, cols, "IN (SELECT id FROM temp.later_mails)", ()):
            return mails, left
        carried: list[int] = []
        for mail in mails:
            (carried if _copied(copy, cols, "= ?", (mail,)) else left).append(mail)
        return carried, sorted(left)
    finally:
        copy.execute("DROP TABLE temp.later_mails")


def _copied(copy: sqlite3.Connection, cols: dict[str, list[str]], which: str, args: tuple[int, ...]) -> bool:
    """Copy the rows of the mails `which` admits; False, and nothing copied, when an id is the
    copy's already."""
    copy.execute("SAVEPOINT later")
    try:
        for table, where in _ROWS:
            if not cols[table]:  # a backup from before the table
                continue
            listed = ", ".join(cols[table])
            copy.execute(
                f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM old.{table}"
                f" WHERE {where.format(which)}",
                args,
            )
    except sqlite3.IntegrityError:
        copy.execute("ROLLBACK TO later")
        return False
    finally:
        copy.execute("RELEASE later")
    return True
