"""Bad input and broken surroundings at the command line: one line naming the problem, the right exit
status, never a traceback. Each command runs as `python -m gateway.cli` on a real SQLite file. Names,
addresses and senders with the maildir relay, and what a new admin met walking through the README,
have modules of their own (test_cli_errors_names.py, test_cli_errors_readme.py); `run`,
`write_config` and the other helpers they and other modules import stay here."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_USAGE
from gateway.store.db import Store
from tests.conftest import config_text, free_port, unwritable

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
HUGE = "99999999999999999999"  # above SQLite's INTEGER (2**63 - 1)


def run(
    config: Path, *args: str, stdin: str | None = None, prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    """The CLI on `config`; `prelude` is Python run before it in the same process (a shorter lock wait)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    command = [*CLI, "--config", str(config), *args]
    if prelude:
        entry = f"{prelude}\nimport sys\nfrom gateway.cli.main import main\nsys.exit(main(sys.argv[1:]))"
        command = [sys.executable, "-c", entry, "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, input=stdin, timeout=60)


def write_config(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text if text is not None else config_text(tmp_path, smsc_port=free_port()))
    path.chmod(0o640)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def db(tmp_path: Path, config: Path) -> Path:
    """The database the daemon would have made: account acme with one user."""
    path = tmp_path / "state" / "smsgw.db"
    store = Store.open(path)
    store.accounts.add_account("acme", sender="+48100200300")
    store.accounts.add_user("anna@acme.example", "acme")
    store.close()
    return path


def one_line(res: subprocess.CompletedProcess[str]) -> str:
    """stderr, checked to be a message and not a traceback."""
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("smsgw"), res.stderr
    return res.stderr


def last_line(res: subprocess.CompletedProcess[str]) -> str:
    """What `run` said as it stopped, after its log lines; checked not to be a traceback."""
    assert "Traceback" not in res.stderr, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("smsgw: "), res.stderr
    return line


def account_row(db: Path, name: str) -> tuple[object, ...] | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT sender, validity_hours, monthly_limit FROM accounts WHERE name = ?", (name,)
        ).fetchone()
    return tuple(row) if row else None


# ---- 1. config errors found while starting stop the restarts ---------------------------------------


@pytest.mark.parametrize(
    ("section", "lines", "named"),
    [
        (
            "[smtp]",
            'tls_cert_file = "/nonexistent/cert.pem"\ntls_key_file = "/nonexistent/key.pem"',
            "/nonexistent/cert.pem",
        ),
        (
            "[mail]",
            'relay_username = "smsgw"\nrelay_password_file = "no-relay-password"',
            "relay_password_file",
        ),
    ],
)
def test_a_file_named_in_the_config_that_cannot_be_read_stops_the_restarts(
    tmp_path: Path, section: str, lines: str, named: str
) -> None:
    text = config_text(tmp_path, smsc_port=free_port()).replace(f"{section}\n", f"{section}\n{lines}\n", 1)
    res = run(write_config(tmp_path, text), "run")
    # The unit's RestartPreventExitStatus=3: a restart every 5 s cannot make the file appear.
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert named in last_line(res)


def test_an_smsc_password_file_that_cannot_be_read_stops_the_restarts(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        'password = "secret"', 'password_file = "no-smsc-password"', 1
    )
    res = run(write_config(tmp_path, text), "run")
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "password_file" in last_line(res)


def test_two_listeners_of_one_config_on_one_port_is_a_config_error(tmp_path: Path) -> None:
    port = free_port()
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        'submission_listen = "127.0.0.1:0"', f'submission_listen = "127.0.0.1:{port}"'
    )
    text += f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
    res = run(write_config(tmp_path, text), "run")
    # No other process to wait for: the config collides with itself at every start.
    assert res.returncode == EXIT_CONFIG, res.stderr
    line = last_line(res)
    assert "[web] listen" in line and "[smtp] submission_listen" in line and str(port) in line, line


def test_a_web_certificate_that_cannot_be_read_is_named_as_such(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port())
    text += (
        f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{free_port()}"\n'
        'tls_cert_file = "/nonexistent/web.crt"\ntls_key_file = "/nonexistent/web.key"\n'
    )
    res = run(write_config(tmp_path, text), "run")
    assert res.returncode == EXIT_CONFIG, res.stderr
    line = last_line(res)
    # Not "cannot listen": the port was free, the certificate was missing.
    assert "[web] tls_cert_file: " in line and "No such file" in line, line


# ---- 2. a database another process keeps locked ---------------------------------------------------


@contextmanager
def write_locked(db: Path) -> Iterator[None]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # what a long write of the daemon or another command holds
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_a_write_on_a_locked_database_says_who_holds_it(config: Path, db: Path) -> None:
    # The CLI waits 30 s for the lock like any SQLite client; 0.3 s here, the outcome is the same.
    shorter_wait = "import gateway.store.db as d\nd.BUSY_TIMEOUT_MS = 300"
    with write_locked(db):
        res = run(config, "user", "add", "carl@acme.example", "--account", "acme", prelude=shorter_wait)
    assert res.returncode == EXIT_FAILURE
    line = one_line(res)
    assert f"database {db}: database is locked" in line
    assert "the daemon or another smsgw command is writing; try again" in line


# ---- 3. writing commands and the state directory ------------------------------------------------


def test_user_passwd_with_a_mistyped_state_dir_creates_no_database(config: Path, tmp_path: Path) -> None:
    res = run(config, "user", "passwd", "anna@acme.example", stdin="a-long-password\n")
    db = tmp_path / "state" / "smsgw.db"
    assert res.returncode == EXIT_FAILURE
    assert f"no database at {db} (is state_dir right?)" in one_line(res)
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["account", "add", "beta"],
        ["user", "add", "carl@acme.example", "--account", "acme"],
        ["user", "passwd", "anna@acme.example"],
        ["optout", "add", "+48601123456"],
        ["billing", "run", "--month", "2026-01"],
    ],
)
def test_a_state_dir_that_is_a_file_is_one_line_for_every_writing_command(
    config: Path, tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "state").write_text("oops")
    res = run(config, *command, stdin="a-long-password\n")
    assert res.returncode == EXIT_CONFIG, res.stderr
    line = one_line(res)
    assert "[gateway] state_dir: " in line and "is a file" in line, line


@pytest.mark.parametrize(
    "command",
    [
        ["account", "set", "acme", "--sender", "+48100200301"],
        ["account", "suspend", "acme"],
        ["account", "resume", "acme"],
        ["user", "add", "carl@acme.example", "--account", "acme"],
        ["user", "remove", "anna@acme.example"],
        ["user", "set", "anna@acme.example", "--daily-limit", "5"],
        ["optout", "add", "+48601123456"],
        ["optout", "remove", "+48601123456"],
        ["billing", "run", "--month", "2026-01"],
        ["premium", "add", "KP123", "--account", "acme", "--email", "konkurs@acme.example"],
        ["premium", "set", "KP123", "--email", "nowy@acme.example"],
        ["premium", "remove", "KP123"],
        ["premium", "verify", "KP123", "--resend"],
        ["premium", "stats", "--month", "2026-01"],
    ],
)
def test_a_command_that_changes_or_sums_rows_refuses_a_missing_database(
    tmp_path: Path, command: list[str]
) -> None:
    # A mistyped state_dir: an opt-out or a suspension written to a fresh database is one the
    # daemon never reads, and a billing run or premium stats there reports an empty month.
    premium = '\n[premium]\nnumbers = ["7355"]\n'
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port(), extra=premium))
    res = run(config, *command)
    db = tmp_path / "state" / "smsgw.db"
    assert res.returncode == EXIT_FAILURE, res.stdout + res.stderr
    assert f"no database at {db} (is state_dir right?)" in one_line(res)
    assert not (tmp_path / "state").exists()


def test_account_add_is_the_command_that_makes_the_database(config: Path, tmp_path: Path) -> None:
    # The first command of a new install, before the daemon ever ran: in the state directory that
    # install-service made (one missing is a mistyped state_dir: test_first_day_cli).
    (tmp_path / "state").mkdir()
    res = run(config, "account", "add", "beta")
    assert res.returncode == 0, res.stderr
    assert f"created a new, empty database at {tmp_path / 'state' / 'smsgw.db'}" in res.stderr
    assert account_row(tmp_path / "state" / "smsgw.db", "beta") == (None, None, None)


def test_user_passwd_in_a_state_dir_this_user_cannot_write(config: Path, db: Path) -> None:
    with unwritable(db.parent):
        res = run(config, "user", "passwd", "anna@acme.example", stdin="a-long-password\n")
    assert res.returncode in (EXIT_FAILURE, EXIT_CONFIG), res.stderr
    assert "this user" in one_line(res)


# ---- 4. numbers beyond what SQLite stores -------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["queue", "retry", HUGE], "argument id"),
        (["queue", "cancel", HUGE], "argument id"),
        (["outbox", "retry", HUGE], "argument id"),
        (["queue", "list", "--limit", HUGE], "--limit"),
        (["outbox", "list", "--limit", HUGE], "--limit"),
        (["queue", "list", "--limit", "-1"], "--limit"),  # SQLite reads LIMIT -1 as no limit at all
        (["mo", "list", "--limit", HUGE], "--limit"),
        (["mo", "list", "--limit", "-1"], "--limit"),
        (["conversation", "list", "--limit", HUGE], "--limit"),
        (["conversation", "list", "--limit", "-1"], "--limit"),
        (["conversation", "list", "--limit", "0"], "--limit"),  # "no conversations", whatever there are
        (["account", "set", "acme", "--monthly-limit", HUGE], "--monthly-limit"),
        (["user", "set", "anna@acme.example", "--daily-limit", HUGE], "--daily-limit"),
        (["account", "set", "acme", "--daily-limit", "²"], "--daily-limit"),
    ],
)
def test_numbers_out_of_range_are_refused_naming_the_argument(
    config: Path, db: Path, command: list[str], named: str
) -> None:
    res = run(config, *command)
    assert res.returncode == EXIT_USAGE, res.stderr
    assert named in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert account_row(db, "acme") == ("+48100200300", None, None)


def test_a_number_no_argument_type_bounds_is_still_one_line(config: Path, db: Path) -> None:
    # Every option bounds its numbers; main's last resort answers for one that some day does not.
    unbounded = "import gateway.cli.ops as ops\nops.list_limit = int"
    res = run(config, "queue", "list", "--limit", HUGE, prelude=unbounded)
    assert res.returncode == EXIT_USAGE, res.stderr
    assert "too large" in one_line(res)


# ---- 5. --validity-hours ------------------------------------------------------------------------


@pytest.mark.parametrize("hours", ["1e9", "-1", "0", "nan", "inf", "721", "a day"])
def test_validity_hours_out_of_range_are_refused(config: Path, db: Path, hours: str) -> None:
    res = run(config, "account", "set", "acme", "--validity-hours", hours)
    assert res.returncode == EXIT_USAGE, res.stderr
    line = one_line(res)
    assert "--validity-hours" in line and "720" in line
    assert account_row(db, "acme") == ("+48100200300", None, None)


def test_validity_hours_are_set_and_go_back_to_the_default(config: Path, db: Path) -> None:
    assert run(config, "account", "set", "acme", "--validity-hours", "720").returncode == 0
    assert account_row(db, "acme") == ("+48100200300", 720.0, None)
    res = run(config, "account", "set", "acme", "--validity-hours", "default")
    assert res.returncode == 0, res.stderr
    assert account_row(db, "acme") == ("+48100200300", None, None)
