"""`smsgw restore` of a backup taken in the middle of a clock step's move (`gateway.stepmoves`).

The backup holds the move's plan, which the next start finishes. The database it replaces finished that
move: the rows carried from it were moved already, and the next start moved them again. With anything
carried the plan is left; with nothing carried it stays, the backup's rows still to move.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.test_account_show import CLI
from tests.test_restore_after_backup import acme_cli
from tests.test_restore_carry import rows

PLAN = ("clock_step_move", '{"seconds": 3600}')  # `stepmoves.PLAN_KEY`; its value is not read here


def backed_up_in_a_move(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[CLI, Path, Path]:
    """ACME's state with a move's plan in it, and its backup taken: the CLI, the database and the backup."""
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO billing_state (key, value) VALUES (?, ?)", PLAN)
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    return cli, db, backup


def test_a_move_under_way_in_the_backup_is_left_when_rows_are_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = backed_up_in_a_move(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:  # the move finished; a billing mark since
        conn.execute("DELETE FROM billing_state WHERE key = ?", PLAN[:1])
        conn.execute("INSERT INTO billing_state (key, value) VALUES ('last_billed', '2026-02')")
    out = cli.ok("restore", str(backup))
    assert rows(db, "SELECT key FROM billing_state WHERE key = 'clock_step_move'") == []
    assert any("the clock step's move under way in the backup left" in line for line in out), out


def test_a_move_under_way_in_the_backup_stays_when_nothing_is_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = backed_up_in_a_move(tmp_path, capsys)
    cli.ok("restore", str(backup))
    assert rows(db, "SELECT key, value FROM billing_state WHERE key = 'clock_step_move'") == [PLAN]
