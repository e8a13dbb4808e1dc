# ruff: noqa: F811  (the tests take test_cli_errors's `config, db` fixture, imported by name)
"""What a new admin met walking through the README at the command line: a send from an untrusted
network naming the fix, send-mo without a simulator, end markers of dashes, billing's month and name
rules, empty or non-mailbox senders, root in the service user's state directory, listings piped into
head or holding control characters, text that cannot travel. Split from test_cli_errors.py by subject
(it was over 400 lines)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_FAILURE, EXIT_USAGE
from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_cli_errors import (
    CLI,
    ROOT,
    config,  # noqa: F401  (the fixture)
    db,  # noqa: F401  (the fixture)
    one_line,
    run,
    write_config,
)
from tests.test_process import start_daemon

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
