"""How to restart an older daemon a newer command will not upgrade the database under, in this machine's
words.

A command of a newer smsgw run while an older daemon runs refuses to upgrade the database under it and
said `restart it on this version first (systemctl restart smsgw)` whether or not a unit is installed:
on a machine where the daemon was started by hand, that command only answers "Unit smsgw.service not
found". It now says `systemctl restart smsgw` only where a unit is installed, else to kill the pid (with
where it is) and start it again as it was started, the words `restore` has said to stop it in
(`gateway.cli.restartwords`).

Real peers: the CLI in this process, an older daemon's lock held by a process of its own, a real SQLite
file at an older schema.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from gateway.housekeeping import write_status
from gateway.statelock import LOCK_FILE
from tests.test_account_show import CLI
from tests.test_status_lock import HOLDER
from tests.test_store import undo_migration_22


@pytest.fixture
def no_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.sudoline.UNITS", (tmp_path / "no" / "smsgw.service",))


@pytest.fixture
def unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "smsgw.service").write_text("[Service]\n")
    monkeypatch.setattr("gateway.sudoline.UNITS", (tmp_path / "smsgw.service",))


@contextmanager
def older_daemon(cli: CLI, version: str | None) -> Iterator[int]:
    """A daemon of another smsgw: its lock on the state directory, and its status file naming
    `version` (None: none, as every smsgw before 0.2.38 wrote it)."""
    state = cli.path.parent / "state"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state / LOCK_FILE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as old:
        assert old.stdin is not None and old.stdout is not None
        try:
            assert old.stdout.readline() == b"held\n"
            said = {"pid": old.pid, "links": {}} | ({} if version is None else {"version": version})
            write_status(state / "status.json", said)
            yield old.pid
        finally:
            old.stdin.close()
            old.wait(30)


def older_schema(cli: CLI) -> None:
    cli.ok("account", "add", "beta")
    with closing(sqlite3.connect(cli.path.parent / "state" / "smsgw.db")) as conn:
        undo_migration_22(conn)
        conn.execute("UPDATE schema_version SET version = 21")
        conn.commit()


def test_the_refusal_under_an_older_daemon_says_kill_where_no_unit_is_installed(
    cli: CLI, no_unit: None
) -> None:
    older_schema(cli)
    lock = cli.path.parent / "state" / LOCK_FILE
    with older_daemon(cli, None) as pid:
        code, _, err = cli("status")
    assert code == 1 and "restart it on this version first (no systemd unit is installed" in err, err
    assert f"`kill {pid}`, the pid in {lock}, and start it again as it was started)" in err
    assert "systemctl" not in err


def test_the_refusal_under_an_older_daemon_says_systemctl_where_a_unit_is(cli: CLI, unit: None) -> None:
    older_schema(cli)
    with older_daemon(cli, None):
        code, _, err = cli("status")
    assert code == 1 and "restart it on this version first (`systemctl restart smsgw`)" in err, err
