"""A billing failure of a month mailed by hand since the backup (`billing run --send` records the files
mailed, never `last_billed`) is over after a restore, as the marks carried say the month billed."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.test_restore_after_backup import acme_cli
from tests.test_restore_carry import rows


def test_the_failure_of_a_month_mailed_by_hand_since_the_backup_is_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_, db = acme_cli(tmp_path, capsys)
    failed = '{"month": "2026-01", "error": "OSError: x", "since": 7}'
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('last_billed', '2025-12')")
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('failed/billing', ?)", (failed,))
    backup = tmp_path / "backup.db"
    cli_.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # January's files mailed by `billing run --send`
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('mailed/2026-01/1', 'abc 7')")
    said = cli_.ok("restore", str(backup))
    assert "has failed" not in str(said)
    assert rows(db, "SELECT key FROM billing_state ORDER BY key") == [("last_billed",), ("mailed/2026-01/1",)]
