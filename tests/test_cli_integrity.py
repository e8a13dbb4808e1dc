"""The CLI does not read the whole database for an integrity check at every command.

Each command ran `PRAGMA quick_check` first: on a year of traffic (3.9 GB) `smsgw status` took 13 s
with the file cached (about 80 s cold), longer than a monitoring check waits, and `account list`
9.5 s. The daemon's start still checks the file, and `smsgw backup` its copy; the commands still
migrate an older schema when no daemon runs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import gateway.store.db as db_module
from gateway.store.db import Store
from tests.conftest import config_text
from tests.test_account_show import CLI
from tests.test_store import undo_migration_27


def traced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement any connection opened from now on runs."""
    seen: list[str] = []
    connect = db_module._connect

    def tracing(path: Path, synchronous: str) -> sqlite3.Connection:
        conn = connect(path, synchronous)
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(db_module, "_connect", tracing)
    return seen


def test_commands_do_not_check_the_whole_file_but_still_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    cli = CLI(config, capsys)
    cli.ok("account", "add", "beta")
    db = cli.path.parent / "state" / "smsgw.db"
    with sqlite3.connect(db) as conn:
        undo_migration_27(conn)  # and those after it: an older file
        conn.execute("UPDATE schema_version SET version = 26")
    seen = traced(monkeypatch)
    for command in (["account", "list"], ["queue", "list"], ["status"]):
        code, _out, err = cli(*command)
        assert code in (0, 3), err  # status: 3, no daemon runs
    assert seen and not any("quick_check" in s for s in seen), [s for s in seen if "check" in s]
    assert any("ALTER TABLE parts ADD COLUMN via" in s for s in seen)  # migrated by the first one
    Store.open(db).close()
    assert any("quick_check" in s for s in seen)  # the daemon's own open still checks
