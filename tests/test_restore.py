"""Backups checked whole, and `smsgw restore`: a backup put in place of the database, never under a
running daemon.

The README's restore was "stop the daemon, delete smsgw.db-wal and smsgw.db-shm, copy the backup over
smsgw.db". Done with the daemon still running, it left a database whose indexes disagreed with its
tables: mail failed with IntegrityError, and `backup` still called its copy "checked" (its
`quick_check` does not compare indexes with tables).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import config_text
from tests.test_account_show import CLI


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775) + '\n[premium]\nnumbers = ["7355"]\n')
    return CLI(path, capsys)


def corrupt_an_index(cli: CLI, db: Path) -> None:
    """An index that disagrees with its table, as a backup copied over a live database leaves it:
    `PRAGMA quick_check` says ok, `PRAGMA integrity_check` does not."""
    with closing(sqlite3.connect(db)) as c:
        row = c.execute(
            "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master"
            " WHERE name = 'premium_services_password'"
        ).fetchone()
        c.execute("PRAGMA writable_schema = ON")
        c.execute("DELETE FROM sqlite_master WHERE name = 'premium_services_password'")
        c.commit()
    cli.ok("premium", "add", "KP123", "--account", "ACME", "--email", "k@example.org")  # not in the index
    with closing(sqlite3.connect(db)) as c:
        c.execute("PRAGMA writable_schema = ON")
        c.execute("INSERT INTO sqlite_master VALUES (?, ?, ?, ?, ?)", row)
        c.commit()
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert c.execute("PRAGMA integrity_check").fetchone()[0] != "ok"


def test_backup_refuses_a_copy_whose_indexes_disagree_with_its_tables(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    corrupt_an_index(cli, tmp_path / "state" / "smsgw.db")
    (tmp_path / "b").mkdir()
    code, out, err = cli("backup", str(tmp_path / "b" / "copy.db"))
    assert code == 1, out  # it said "backup written" of a damaged database
    assert "failed its integrity check (" in err and "premium_services_password" in err, err
    assert "smsgw restore" in err
    assert list((tmp_path / "b").iterdir()) == []  # no copy, no temporary file left behind
