"""The ids a restore leaves behind it: SQLite gives a new row one more than the largest id in its table
(no AUTOINCREMENT), and a restore puts back a table whose largest is older. The SMS and outbox mails
an admin saw before the restore (`queue list`, `outbox list`, and the commands that take their ids)
would then be named by the next ones, another mail's SMS answered to `queue cancel 812`.

A restore records the largest id each table had in the database it replaced (`ids_above/<table>` in
the store's key/value table); the first row inserted after it is given the next id by name, and every
later one follows it as SQLite's own. A table rebuilt with AUTOINCREMENT would keep such a mark
itself, but rebuilding the queue's tables copies every row at the upgrade.

A process reads its mark once per table: none (most processes, ever) costs nothing more per insert;
one set is read, with the largest id, by the insert that passes it, and removed in its write.
"""

from __future__ import annotations

import sqlite3
import weakref
from typing import Any

KEY = "ids_above/"
TABLES = ("messages", "outbox")
# Per connection, the tables whose mark is passed (or was never set): nothing more to read for them.
_PASSED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def next_id(owner: Any, conn: sqlite3.Connection, table: str) -> int | None:
    """The id the next row of `table` must take, or None for SQLite's own; asked in the write that
    inserts the row. `owner`: what the process keeps its store by (its `Db`), for the reads it no
    longer needs."""
    passed = _PASSED.setdefault(owner, set())
    if table in passed:
        return None
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (KEY + table,)).fetchone()
    if row is None:
        passed.add(table)
        return None
    # Removed in the write of the row that passes it: a write undone leaves the mark, read again.
    conn.execute("DELETE FROM billing_state WHERE key = ?", (KEY + table,))
    (largest,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
    return int(row[0]) + 1 if largest < int(row[0]) else None


def keep_above(copy: sqlite3.Connection, table: str) -> int | None:
    """In a restore's copy, with the replaced database attached as `old`: the mark of `table` from its
    largest id, or the mark it kept itself (a restore again before any new row); the mark, if above
    the copy's own."""
    for db in ("main", "old"):  # a backup from before the key/value table: the daemon's start makes it
        if copy.execute(f"SELECT 1 FROM {db}.sqlite_master WHERE name = 'billing_state'").fetchone() is None:
            return None
    (mine,) = copy.execute(f"SELECT COALESCE(MAX(id), 0) FROM main.{table}").fetchone()
    (theirs,) = copy.execute(f"SELECT COALESCE(MAX(id), 0) FROM old.{table}").fetchone()
    kept = copy.execute("SELECT value FROM old.billing_state WHERE key = ?", (KEY + table,)).fetchone()
    above = max(int(theirs), int(kept[0]) if kept else 0)
    if above <= mine:
        return None
    copy.execute(
        "INSERT INTO main.billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (KEY + table, str(above)),
    )
    return above
