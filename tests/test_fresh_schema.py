"""A new database is made from one script (gateway/store/freshscript.py) instead of replaying every
migration: it must be the database the migrations make, object by object and row by row, and a
script older than the code must still give it (the migrations since run after it).

Real SQLite files, opened as the daemon and the commands open them (`Store.open`).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.store import freshschema, freshscript, migrate
from gateway.store.db import Store
from gateway.store.schema import MIGRATIONS, SCHEMA_VERSION

REWRITE = "python -m gateway.store.freshschema > gateway/store/freshscript.py && ruff format gateway/store"


def contents(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything a database holds but its pages: its objects in their order and every table's rows."""
    objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    tables = [name for kind, name, _, _ in objects if kind == "table"]
    rows = {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    columns = {t: conn.execute(f'PRAGMA table_info("{t}")').fetchall() for t in tables}
    indexes = {t: conn.execute(f'PRAGMA index_list("{t}")').fetchall() for t in tables}
    return {"objects": objects, "rows": rows, "columns": columns, "indexes": indexes}


def migrated_up_to(version: int) -> sqlite3.Connection:
    """A database in memory made by the migrations 1..version, one by one."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (0)")
    for number, migration in enumerate(MIGRATIONS[:version], start=1):
        for statement in migrate._split_sql(migration):
            conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = ?", (number,))
    return conn


def opened(path: Path) -> dict[str, Any]:
    Store.open(path).close()
    with closing(sqlite3.connect(path)) as conn:
        return contents(conn)


def test_the_script_is_what_the_migrations_make() -> None:
    with closing(freshschema.migrated_from_nothing()) as conn:
        made = tuple(freshschema.statements(conn))
    assert freshscript.VERSION == SCHEMA_VERSION, f"a migration was added: write the script again: {REWRITE}"
    assert freshscript.STATEMENTS == made, f"the migrations changed: write the script again: {REWRITE}"


def test_a_new_database_equals_one_migrated_step_by_step(tmp_path: Path) -> None:
    with closing(migrated_up_to(SCHEMA_VERSION)) as conn:
        expected = contents(conn)
    assert opened(tmp_path / "smsgw.db") == expected


def test_a_new_database_is_made_without_replaying_the_migrations(tmp_path: Path, monkeypatch: Any) -> None:
    # What makes it cheap: none of the migrations runs for a database made now.
    ran: list[int] = []
    real = migrate._split_sql

    def counted(script: str) -> list[str]:
        ran.append(MIGRATIONS.index(script) + 1 if script in MIGRATIONS else 0)
        return real(script)

    monkeypatch.setattr(migrate, "_split_sql", counted)
    Store.open(tmp_path / "smsgw.db").close()
    assert [n for n in ran if n] == []


@pytest.mark.parametrize("behind", [1, 4])
def test_a_script_older_than_the_code_is_followed_by_the_migrations_since(
    tmp_path: Path, monkeypatch: Any, behind: int
) -> None:
    # A migration added and the script not written again: the new database is still the migrated one.
    older = SCHEMA_VERSION - behind
    with closing(migrated_up_to(older)) as conn:
        statements = tuple(freshschema.statements(conn))
    monkeypatch.setattr(freshscript, "VERSION", older)
    monkeypatch.setattr(freshscript, "STATEMENTS", statements)
    with closing(migrated_up_to(SCHEMA_VERSION)) as conn:
        expected = contents(conn)
    assert opened(tmp_path / "smsgw.db") == expected


def test_an_existing_database_is_migrated_as_before(tmp_path: Path) -> None:
    # Only a database made now takes the script: one at an older version runs its migrations.
    path = tmp_path / "smsgw.db"
    with closing(migrated_up_to(SCHEMA_VERSION - 3)) as memory, closing(sqlite3.connect(path)) as disk:
        memory.backup(disk)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    with closing(migrated_up_to(SCHEMA_VERSION)) as conn:
        expected = contents(conn)
    assert opened(path) == expected
