"""The row moves `smsgw restore` makes into the restored copy from the database it replaces (attached
as `old`), for any table: the store's carries (`gateway.store.restorecarry`, `restoremo`) and the
features' (`gateway.restorecarries`), which name their own tables, use the same few.

A row is carried only when it is the same row in both (its id and what never changes of it, as the
caller says: `c` is the copy's row, `o` the replaced one's) or one the replaced database added after
the backup (its id above the copy's largest: SQLite gave it after the copy's newest). Never a row
under an id the other database gave to another.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def shared_columns(copy: sqlite3.Connection, table: str) -> list[str]:
    """The columns of `table` both databases have: a backup from before an upgrade lacks the ones
    added since (the daemon's start migrates the copy after)."""
    theirs = {r[1] for r in copy.execute(f"PRAGMA old.table_info({table})")}
    return [r[1] for r in copy.execute(f"PRAGMA main.table_info({table})") if r[1] in theirs]


def in_both(copy: sqlite3.Connection, table: str) -> bool:
    """Whether both databases have `table`: a backup from before the migration that made it has none."""
    return all(
        copy.execute(
            f"SELECT 1 FROM {db}.sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        for db in ("main", "old")
    )


def take_changed(
    copy: sqlite3.Connection, table: str, same: str, where: str = "true", args: Sequence[object] = ()
) -> list[int]:
    """The rows of `table` in both (`same`) that `where` admits and that changed since the backup
    take the replaced database's columns, which are the later: the ids changed."""
    cols = [c for c in shared_columns(copy, table) if c != "id"]
    if not cols:
        return []
    differs = " OR ".join(f"c.{c} IS NOT o.{c}" for c in cols)
    ids = [
        int(r[0])
        for r in copy.execute(
            f"SELECT c.id FROM main.{table} c JOIN old.{table} o ON {same} WHERE ({where}) AND ({differs})",
            tuple(args),
        )
    ]
    listed = ", ".join(cols)
    copy.executemany(
        f"UPDATE main.{table} SET ({listed}) = (SELECT {listed} FROM old.{table} WHERE id = ?) WHERE id = ?",
        [(i, i) for i in ids],
    )
    return ids


def add_later(
    copy: sqlite3.Connection, table: str, where: str = "true", args: Sequence[object] = ()
) -> list[int]:
    """The rows of `table` the replaced database added after the backup that `where` (on `o`)
    admits, copied under their own ids, which the copy has free: the ids added."""
    cols = shared_columns(copy, table)
    if not cols:  # not in both
        return []
    (top,) = copy.execute(f"SELECT COALESCE(MAX(id), 0) FROM main.{table}").fetchone()
    chosen = f"FROM old.{table} o WHERE o.id > ? AND ({where})"
    ids = [int(r[0]) for r in copy.execute(f"SELECT o.id {chosen} ORDER BY o.id", (top, *args))]
    if ids:
        copy.execute(
            f"INSERT INTO main.{table} ({', '.join(cols)}) SELECT {', '.join('o.' + c for c in cols)}"
            f" {chosen} ORDER BY o.id",
            (top, *args),
        )
    return ids


def same_account(column: str) -> str:
    """SQL true when the account `column` names (or none) is the same account in both: one added
    after the backup is not the copy's, and its id may be given to another after the restore."""
    return (
        f"({column} IS NULL OR EXISTS (SELECT 1 FROM main.accounts a JOIN old.accounts x ON x.id = a.id"
        f" AND x.name = a.name AND x.created_at = a.created_at WHERE a.id = {column}))"
    )
