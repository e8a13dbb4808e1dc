"""Bad input and broken surroundings at the command line: one line naming the problem, the right exit
status, never a traceback. Each command runs as `python -m gateway.cli` on a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_USAGE
from gateway.store.db import Store
from tests.conftest import config_text, free_port, mode, unwritable
from tests.test_process import start_daemon
from tests.web_helpers import OPERATOR, as_user, csrf_of, panel_store, web_context

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


# ---- 6. names, addresses and senders ------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_account_name_is_refused(config: Path, db: Path, name: str) -> None:
    res = run(config, "account", "add", name)
    assert res.returncode == EXIT_USAGE, res.stderr
    assert "account name cannot be empty" in res.stderr and "Traceback" not in res.stderr
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM accounts")] == ["acme"]


def test_spaces_around_an_account_name_are_dropped(config: Path, db: Path) -> None:
    res = run(config, "account", "add", " beta ")
    assert res.returncode == 0 and "account beta added" in res.stdout, res.stderr
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT name FROM accounts")) == ["acme", "beta"]
    # The same name with spaces is the same account, not a second one that looks alike.
    res = run(config, "account", "add", "beta  ")
    assert res.returncode == EXIT_FAILURE and "exists already" in res.stderr


def networks(db: Path, name: str) -> tuple[str, ...]:
    store = Store.open(db)
    try:
        return tuple(store.accounts.get_account(name).networks)
    finally:
        store.close()


@pytest.mark.parametrize(
    "command",
    [
        ["account", "set", "acme", "--add-network", "300.0.0.0/8"],
        ["account", "set", "acme", "--add-network", "192.0.2.0/24", "--remove-network", "300.0.0.0/8"],
        ["account", "add", "beta", "--relay-network", "300.0.0.0/8"],
    ],
)
def test_a_network_that_is_not_one_is_a_usage_error(config: Path, db: Path, command: list[str]) -> None:
    # Exit 3 says the config file is broken (and stops systemd's restarts); it is the argument.
    res = run(config, *command)
    assert res.returncode == EXIT_USAGE, res.stderr
    assert "not a network: '300.0.0.0/8' (use CIDR such as 10.0.0.0/8)" in one_line(res)
    assert networks(db, "acme") == ()
    assert account_row(db, "beta") is None


@pytest.mark.parametrize(
    ("sender", "problem"),
    [
        ("ACME Corporation Poland Sp. z o.o.", "at most 11"),
        ("ACME Polska1", "at most 11"),  # 12
        ("ACME[Pl]ska", "holds '[]'"),  # brackets are behind a GSM escape: not taken at all
        ("Łódź SMS", "GSM 03.38"),
        ("+" + "1" * 21, "at most 20"),
    ],
)
def test_a_sender_an_smsc_would_cut_is_refused(config: Path, db: Path, sender: str, problem: str) -> None:
    res = run(config, "account", "set", "acme", "--sender", sender)
    assert res.returncode == EXIT_USAGE, res.stderr
    line = one_line(res)
    assert "--sender" in line and problem in line, line
    assert account_row(db, "acme") == ("+48100200300", None, None)
    res = run(config, "account", "add", "beta", "--sender", sender)
    assert res.returncode == EXIT_USAGE and problem in res.stderr
    assert account_row(db, "beta") is None


def test_an_eleven_character_name_is_a_sender_and_an_empty_one_the_default(config: Path, db: Path) -> None:
    res = run(config, "account", "set", "acme", "--sender", "ACME Polska")
    assert res.returncode == 0, res.stderr
    assert "cannot answer" in res.stdout
    assert account_row(db, "acme") == ("ACME Polska", None, None)
    # As the panel's empty field: back to [gateway] default_sender, not an empty originator.
    assert run(config, "account", "set", "acme", "--sender", " ").returncode == 0
    assert account_row(db, "acme") == (None, None, None)


async def test_the_panel_refuses_the_senders_the_cli_refuses(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    form = {"split_mode": "concatenated", "dlr_mail": "none", "overflow": "truncate"}
    try:
        async with as_user(web, OPERATOR) as c:  # the sender is the operator's (see test_web_admin_day)
            token = csrf_of((await c.get("/account")).text)
            r = await c.post("/account", data={**form, "csrf": token, "sender": "ACME Corporation Poland"})
            assert r.status_code == 400 and "at most 11" in r.text
            assert store.accounts.get_account("acme").sender == "+48100200300"
            r = await c.post("/account", data={**form, "csrf": token, "sender": "ACME Polska"})
            assert r.status_code == 303
            assert store.accounts.get_account("acme").sender == "ACME Polska"
    finally:
        store.close()


# ---- 7. the shipped maildir relay ---------------------------------------------------------------


def test_maildir_mails_are_private_whatever_the_umask(tmp_path: Path, umask_022: None) -> None:
    from gateway.mailer import CaptureMailer

    # `relay = "maildir:var/mail"` as shipped: a bounce quotes the SMS text it could not deliver.
    maildir = tmp_path / "var" / "mail"
    asyncio.run(CaptureMailer(maildir).send("<>", "anna@acme.example", b"Subject: x\r\n\r\nPIN 4711\r\n"))
    [eml] = maildir.glob("*.eml")
    assert mode(eml) == 0o600
    assert mode(maildir) == 0o700 and mode(maildir.parent) == 0o700


def test_a_maildir_every_user_could_read_is_narrowed(tmp_path: Path, umask_022: None) -> None:
    from gateway.mailer import CaptureMailer

    maildir = tmp_path / "mail"
    maildir.mkdir(mode=0o755)  # as an earlier version made it
    old = maildir / "20260101-000000-1-0001-anna@acme.example.eml"
    old.write_bytes(b"Subject: old\r\n\r\ntext\r\n")
    asyncio.run(CaptureMailer(maildir).send("<>", "anna@acme.example", b"Subject: x\r\n\r\ny\r\n"))
    assert mode(maildir) & 0o007 == 0  # the older 0644 files are out of other users' reach with it
    assert all(mode(p) == 0o600 for p in maildir.glob("*.eml") if p != old)


# ---- 8. what a new admin met walking through the README -----------------------------------------


async def test_send_from_a_network_the_senders_account_does_not_trust_names_the_fix(tmp_path: Path) -> None:
    # `send` mails from 127.0.0.1 through the relay port, as any client: the relay answers a bare
    # 5.7.1, and the admin is told which account lacks the address and how to add it.
    smtp_port = free_port()
    extra = '\n[[account]]\nname = "beta"\nrelay_networks = ["192.0.2.0/24"]\nusers = ["carl@beta.example"]\n'
    config = write_config(
        tmp_path, config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port, extra=extra)
    )
    proc = await start_daemon(config, smtp_port)
    try:
        res = await asyncio.to_thread(run, config, "send", "601123456", "x", "--as", "carl@beta.example")
        assert res.returncode == EXIT_FAILURE, res.stderr
        assert "550 5.7.1" in one_line(res)
        assert "account beta" in res.stderr and "192.0.2.0/24" in res.stderr
        lines = res.stderr.splitlines()
        assert lines[0].startswith("smsgw: refused: 550"), lines
        hint = lines[1:]
        assert len(hint) == 2, hint
        assert "`smsgw account set beta --add-network 127.0.0.1/32`" in hint[0]
        # What that gives away, and how to take it back.
        assert "every process on this machine" in hint[1]
        assert "`smsgw account set beta --remove-network 127.0.0.1/32`" in hint[1], hint
        assert "submission port" in hint[1]
        res = await asyncio.to_thread(run, config, "send", "601123456", "x", "--as", "nobody@beta.example")
        assert res.returncode == EXIT_FAILURE
        assert "smsgw user add nobody@beta.example --account NAME" in one_line(res)
        # With the network added, the same command is accepted.
        assert run(config, "account", "set", "beta", "--add-network", "127.0.0.1/32").returncode == 0
        res = await asyncio.to_thread(run, config, "send", "601123456", "x", "--as", "carl@beta.example")
        assert res.returncode == 0 and "accepted: 250" in res.stdout, res.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)


def test_send_mo_without_a_simulator_asks_whether_the_daemon_runs(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port())
    config = write_config(
        tmp_path, text.replace("[simulator]\n", f"[simulator]\ncontrol_port = {free_port()}\n")
    )
    res = run(config, "simulator", "send-mo", "--to", "+48100200300", "hello")
    assert res.returncode == EXIT_FAILURE
    line = one_line(res)
    assert "cannot reach the simulator" in line and "is `smsgw run`" in line, line


def end_marker(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT end_marker FROM accounts WHERE name = 'acme'").fetchone()[0]


@pytest.mark.parametrize("args", [["--end-marker", "---"], ["--end-marker=---"]])
def test_an_end_marker_of_dashes_is_taken(config: Path, db: Path, args: list[str]) -> None:
    res = run(config, "account", "set", "acme", *args)
    assert res.returncode == 0, res.stderr
    assert end_marker(db) == "---"


@pytest.mark.parametrize("args", [["--end-marker", "--"], ["--end-marker=--"], ["--end-marker", "-- "]])
def test_an_end_marker_of_two_dashes_is_taken(config: Path, db: Path, args: list[str]) -> None:
    # A signature's delimiter: argparse dropped `--` as the end of the options, and SQLite then
    # refused the empty list left in its place ("Error binding parameter").
    res = run(config, "account", "set", "acme", *args)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert end_marker(db) == "--"  # stripped: body lines are compared stripped, "-- " never matched


def test_an_end_marker_without_its_value_is_still_refused(config: Path, db: Path) -> None:
    res = run(config, "account", "set", "acme", "--end-marker", "--dlr-mail", "all")
    assert res.returncode == EXIT_USAGE and "--end-marker" in res.stderr, res.stderr
    assert end_marker(db) is None


@pytest.mark.parametrize(
    "args, words",
    [
        (["premium", "stats", "--month", "9999-12"], "--month 9999-12: give YYYY-MM between"),
        (["billing", "show", "--month", "２０２６-11"], "give YYYY-MM between"),
        (["account", "add", "Spółka " + "ż" * 60], "holds at most 64"),
    ],
)
def test_months_and_account_names_follow_the_billings_rules(
    config: Path, db: Path, args: list[str], words: str
) -> None:
    # The months the billing takes, and names whose billing file can be written, in every command.
    res = run(config, *args)
    assert res.returncode == EXIT_USAGE and words in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize(
    "sender", ["", "  ", "anna", "Anna <anna@acme.example>", "anna@acme.example\nBcc: x@y.z"]
)
def test_send_refuses_a_sender_that_is_no_mailbox(config: Path, sender: str) -> None:
    res = run(config, "send", "601123456", "hello", "--as", sender)
    assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr, res.stderr
    assert "argument --as" in res.stderr and "is not a mail address" in res.stderr, res.stderr


async def test_send_as_an_empty_sender_sends_and_records_nothing(tmp_path: Path) -> None:
    # MAIL FROM:<> is a bounce's reverse path: the gateway recorded a bounce nobody sent.
    smtp_port = free_port()
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))
    proc = await start_daemon(config, smtp_port)
    try:
        res = await asyncio.to_thread(run, config, "send", "601123456", "hello", "--as", "")
        assert res.returncode == EXIT_USAGE and "argument --as: '' is not a mail address" in res.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0


def test_root_is_refused_in_a_state_dir_the_service_user_owns(tmp_path: Path) -> None:
    # `sudo smsgw billing run` wrote the month's directory as root (and SQLite its -wal/-shm):
    # the daemon, running as smsgw, could then not write its next bill or open its database.
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    state = tmp_path / "state"
    Store.open(state / "smsgw.db").close()
    if os.geteuid() != 0:  # CI runs as root; another user is the owner here, and is not refused
        assert run(config, "account", "list").returncode == 0
        return
    for path in (state, *state.iterdir()):
        os.chown(path, 65534, 65534)  # nobody, as the service's user would own them
    for args in (("billing", "run", "--month", "2026-10"), ("account", "list"), ("status",)):
        res = run(config, *args)
        # 2, a command given wrong: 1 from `status` read as "the daemon runs with trouble" to monitoring
        assert res.returncode == EXIT_USAGE, res.stderr
        assert "belongs to user" in res.stderr and "sudo -u" in res.stderr
    assert {p.stat().st_uid for p in state.iterdir()} == {65534}  # nothing made as root


def test_a_listing_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    # `smsgw outbox list | head`: the reader leaves before the listing is written. That was a
    # BrokenPipeError traceback; now the command ends as a Unix tool that SIGPIPE stops would.
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    assert run(config, "account", "add", "acme").returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    with subprocess.Popen(
        [*CLI, "--config", str(config), "account", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # gone before the command writes its first line
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 128 + signal.SIGPIPE


def test_listings_show_control_characters_from_outside_escaped(config: Path, db: Path) -> None:
    # An SMSC sent an MO whose source address held an ESC sequence (set the terminal's title, clear
    # the screen) and one with CR/LF (a forged line in the listing): `mo list` printed them raw.
    store = Store.open(db)
    store.mo.record_mo("main", "\x1b]0;PWNED\x07\x1b[2J", "+48100200300", "x", 0, None)
    store.mo.record_mo("main", "ev\r\nBcc: victim@evil.example", "+48100200300", "\u202eytrap", 0, None)
    store.close()
    res = run(config, "mo", "list")
    assert res.returncode == 0, res.stderr
    assert not any(c in res.stdout for c in "\x1b\x07\r\u202e"), repr(res.stdout)
    assert "\\x1b]0;PWNED\\x07\\x1b[2J" in res.stdout
    assert "ev\\x0d\\x0aBcc: victim@evil.example" in res.stdout
    assert len(res.stdout.splitlines()) == 2  # one line per MO, none forged


def test_send_and_send_mo_refuse_text_that_cannot_travel_with_a_message(config: Path, db: Path) -> None:
    # `send --subject` with a line break printed Python's words about header values, and
    # `simulator send-mo --from 'Bąk'` an internal UnicodeEncodeError.
    res = run(
        config, "send", "601123456", "x", "--as", "anna@acme.example", "--subject", "Linia1\nBcc: x@y.pl"
    )
    assert res.returncode == EXIT_USAGE and "--subject: one line of printable text" in res.stderr, res.stderr
    res = run(config, "simulator", "send-mo", "--from", "Bąk", "--to", "+48100200300", "x")
    assert res.returncode == EXIT_USAGE and "--from: a phone number or a sender name in ASCII" in res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
