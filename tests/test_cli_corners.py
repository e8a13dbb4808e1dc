"""The CLI's corners: a restore under another command that has the database open, and files planted
in a state directory open to others, read by no command before the start's checks have seen them.

Each holder of the database is a real second process, opening it as every command does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port
from tests.test_account_show import CLI

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port(), relay_port=free_port()))
    (tmp_path / "state").mkdir()
    return CLI(path, capsys)


@contextmanager
def second_process(code: str) -> Iterator[subprocess.Popen[str]]:
    """A Python process that runs `code`, says so, and then holds on until its standard input closes."""
    with subprocess.Popen(
        [sys.executable, "-c", f"{code}\nprint('ready', flush=True)\nimport sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            yield proc
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


def opening_the_store(config: Path) -> str:
    """`code` for `second_process`: the database opened as `outbox list` or `billing run` open it."""
    return (
        "from pathlib import Path\nfrom gateway.config import load_config\n"
        "from gateway.cli.common import open_store\n"
        f"store = open_store(load_config(Path({str(config)!r})), must_exist=True)\n"
        "store.accounts.list_accounts()"
    )


def an_old_schema(c: sqlite3.Connection) -> None:
    """A database at schema version 1, in WAL mode as the daemon leaves it: read only by the check
    for an older schema under a running daemon."""
    c.execute("PRAGMA journal_mode=WAL")
    c.executescript("CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version VALUES (1);")


def accounts_in(db: Path) -> int:
    with closing(sqlite3.connect(db)) as c:
        return int(c.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])


def test_restore_is_refused_while_another_command_has_the_database_open(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    cli.ok("account", "add", "LATER")
    db = tmp_path / "state" / "smsgw.db"
    with second_process(opening_the_store(cli.path)) as holder:
        code, out, err = cli("restore", str(backup))
        # It swapped the file under the holder, whose next write went into the file set aside.
        assert code == 1, (out, err)
        assert f"is open in another smsgw command (pid {holder.pid}" in err, err
        assert "wait for it to end" in err
        assert accounts_in(db) == 2  # nothing changed, nothing set aside
        assert not list(db.parent.glob("smsgw.db.before-restore-*"))
    cli.ok("restore", str(backup))  # the holder gone: restored
    assert accounts_in(db) == 1


def test_a_command_is_refused_while_a_restore_replaces_the_database(tmp_path: Path, cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    state = tmp_path / "state"
    during_restore = (
        "from pathlib import Path\nfrom gateway import statelock\n"
        f"lock = statelock.database_alone(Path({str(state)!r}), 0)\nlock.__enter__()"
    )
    with second_process(during_restore) as restore:
        code, _out, err = cli("outbox", "list")
        assert code == 1, err
        assert f"smsgw restore (pid {restore.pid}) is replacing the database" in err, err
    assert cli.ok("account", "list")


@pytest.mark.skipif(os.geteuid() != 0, reason="the harm is root's: chown needs root")
def test_a_database_planted_as_a_link_is_not_read_before_it_is_refused(tmp_path: Path, cli: CLI) -> None:
    state = tmp_path / "state"
    state.chmod(0o777)  # root's, but open to every user: anyone may put a link there
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = elsewhere / "planted.db"
    with closing(sqlite3.connect(planted)) as c:
        an_old_schema(c)
    (state / "smsgw.db").symlink_to(planted)
    code, _out, err = cli("account", "list")
    assert code == 3, err
    assert "is a symbolic link" in err, err
    # The schema check read it as root first: SQLite made its -wal and -shm beside the target.
    assert sorted(p.name for p in elsewhere.iterdir()) == ["planted.db"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_another_users_database_is_not_read_before_it_is_refused(tmp_path: Path, cli: CLI) -> None:
    state = tmp_path / "state"
    state.chmod(0o777)
    db = state / "smsgw.db"
    with closing(sqlite3.connect(db)) as c:
        an_old_schema(c)
    os.chown(db, 65534, 65534)
    for command in (("status",), ("backup", str(tmp_path / "copy.db"))):
        code, _out, err = cli(*command)
        assert code == 3, (command, err)
        assert "belongs to user nobody" in err, (command, err)
        # Read as root, it got a -wal and -shm, given to their owner: the planter's own.
        assert sorted(p.name for p in state.iterdir() if p.name.startswith("smsgw.db")) == ["smsgw.db"]
