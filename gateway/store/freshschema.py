"""A new database made in one step: what every migration builds, written out as one script.

Replaying the migrations for a new database (a first start, a first command, each of the test
suite's thousands of databases) cost some 50 ms of CPU, as each ALTER TABLE makes SQLite read the
whole schema again; the script of what they build takes about a quarter of that. It holds the
schema objects in the order the migrations created them (`sqlite_master`'s order, on which a
query plan between equal indexes may depend), with each table's rows right after its table (before
any trigger on it exists, as when the migration wrote them).

`gateway/store/freshscript.py` is written by this module (`python -m gateway.store.freshschema`);
tests/test_fresh_schema.py checks that a database made from it equals one migrated from nothing,
table by table and row by row, and names that command when a migration was added since. A script
older than the code is still right to use: the migrations after its version run after it.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator

HEADER = '''"""What the migrations build for a new database, as one script (`gateway.store.freshschema`).

Written by `python -m gateway.store.freshschema`; do not edit by hand.
"""

# ruff: noqa: E501
'''

_INTERNAL = ("schema_version", "sqlite_sequence")


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statements(conn: sqlite3.Connection) -> Iterator[str]:
    """The schema's objects in their order and the rows each table holds, as SQL statements."""
    objects = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    for kind, name, sql in objects:
        if name in _INTERNAL:
            continue
        yield sql
        if kind == "table":
            for row in conn.execute(f"SELECT * FROM {_quoted(name)}"):
                yield f"INSERT INTO {_quoted(name)} VALUES ({', '.join(_literal(v) for v in row)})"


def migrated_from_nothing() -> sqlite3.Connection:
    """A database in memory that every migration made, as `migrate` makes a new one."""
    from gateway.store.migrate import _split_sql as split_sql
    from gateway.store.schema import MIGRATIONS

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (0)")
    for number, migration in enumerate(MIGRATIONS, start=1):
        for statement in split_sql(migration):
            conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = ?", (number,))
    return conn


def module_text() -> str:
    """gateway/store/freshscript.py as this code's migrations make it."""
    conn = migrated_from_nothing()
    (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
    body = "".join(f"    {s!r},\n" for s in statements(conn))
    return f"{HEADER}\nVERSION = {version}\nSTATEMENTS: tuple[str, ...] = (\n{body})\n"


if __name__ == "__main__":
    sys.stdout.write(module_text())
