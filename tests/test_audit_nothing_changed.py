"""A command that changes nothing writes no audit row (README: `audit`), and says it changed nothing.

`smsgw account set ACME --monthly-limit 777` given twice wrote a second row, `account.set ACME:
nothing`, and `user set` likewise (`user.set anna@acme.example: nothing`): the trail an admin reads to
find who changed what filled with changes that were none, and each said "updated". The CLI runs as a
process on a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.test_cli_errors import run, write_config

ANNA = "anna@acme.example"


def trail(tmp_path: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as c:
        return c.execute("SELECT action, detail FROM audit ORDER BY id").fetchall()


def smsgw(config: Path, *args: str) -> str:
    res = run(config, *args)
    assert res.returncode == 0, (res.stdout, res.stderr)
    return res.stdout


def test_a_setting_given_as_it_was_writes_no_row_and_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    smsgw(config, "account", "add", "ACME")
    smsgw(config, "user", "add", ANNA, "--account", "ACME")
    assert "account ACME updated" in smsgw(config, "account", "set", "ACME", "--monthly-limit", "777")
    assert "user anna@acme.example updated" in smsgw(config, "user", "set", ANNA, "--daily-limit", "5")
    made = trail(tmp_path)
    assert made[-2:] == [
        ("account.set", "ACME: monthly_limit none → 777"),
        ("user.set", "anna@acme.example: daily_limit none → 5"),
    ]

    again = smsgw(config, "account", "set", "ACME", "--monthly-limit", "777")
    assert "account ACME unchanged: it had these settings already" in again and "updated" not in again
    again = smsgw(config, "user", "set", ANNA, "--daily-limit", "5", "--role", "user")
    assert "user anna@acme.example unchanged: it had these settings already" in again
    assert trail(tmp_path) == made

    # One setting changed among others given as they were: the row names that one alone.
    smsgw(config, "account", "set", "ACME", "--monthly-limit", "777", "--daily-limit", "50")
    assert trail(tmp_path)[len(made) :] == [("account.set", "ACME: daily_limit none → 50")]
