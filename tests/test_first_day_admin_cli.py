"""An administrator's first day at the CLI, the second pass: lists that are a moment old and say so,
accounts that differ only in case, a password file that outlives its password, times without a zone,
log lines on the terminal. Every command runs through the real CLI entry point on a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.housekeeping import write_status
from tests.conftest import config_text
from tests.test_account_show import CLI


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()  # as install-service or the daemon's first start leaves it
    return CLI(path, capsys)


# ---- auth list: how old its answer is, and a lift already asked for ----------------------------------


def test_auth_list_says_when_the_daemon_wrote_the_locks(cli: CLI) -> None:
    """Right after the third failure it said "no logins locked": the daemon had not written yet."""
    cli.ok("account", "add", "ACME")
    state = cli.path.parent / "state" / "status.json"
    write_status(state, {"auth_locks": []})
    [line] = cli.ok("auth", "list")
    assert line.startswith("no logins locked as of ") and "every 2 s" in line, line
    shown = line.removeprefix("no logins locked as of ")[:8]
    assert time.strptime(shown, "%H:%M:%S"), shown


def test_auth_list_marks_a_lock_whose_unlock_is_requested(cli: CLI) -> None:
    """After `auth unlock X` it still said "locked 5 min more": the daemon lifts it at the next try."""
    cli.ok("account", "add", "ACME")
    state = cli.path.parent / "state" / "status.json"
    lock = {"kind": "pair", "address": "192.0.2.7", "login": "anna@acme.example", "seconds_left": 300}
    other = {**lock, "address": "192.0.2.8", "login": "ben@acme.example"}
    locks = [{**lock, "strikes": 1, "locked_at": time.time() - 5}, {**other, "strikes": 1, "locked_at": 0}]
    write_status(state, {"auth_locks": locks})
    before = cli.ok("auth", "list")
    assert before[0].startswith("logins locked as of "), before
    assert not any("unlock requested" in line for line in before), before
    cli.ok("auth", "unlock", "anna@acme.example")
    after = cli.ok("auth", "list")
    [anna] = [line for line in after if "anna@acme.example" in line]
    [ben] = [line for line in after if "ben@acme.example" in line]
    assert anna.endswith("(unlock requested: lifted at the next login attempt)"), anna
    assert "unlock requested" not in ben
    # A lock made after the request is not lifted by it (acl.counters), and not marked.
    write_status(state, {"auth_locks": [{**lock, "strikes": 2, "locked_at": time.time() + 60}]})
    assert not any("unlock requested" in line for line in cli.ok("auth", "list"))
