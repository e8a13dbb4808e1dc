"""What a new administrator walking the README met at the `smsgw` command line: a wrong word after a
command answered with the top-level usage, `queue retry` of a delivered message said "0 part(s)
queued again" and exited 0, `send` refused a number written with spaces that mail takes, the relay
hint did not say what adding 127.0.0.1 gives away, a limit error quoted 2**63 - 1, and an account
name in the wrong case was "no account" with no word of the one meant.

Commands run through the real entry point (in this process, or `python -m gateway.cli`) on a real
SQLite file; `send` mails the running daemon's relay port, which hands the SMS to an SMPP fake."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_FAILURE, EXIT_USAGE
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, config_text, free_port
from tests.fakes.smsc import HappySMSC
from tests.test_account_show import CLI
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon

JANUARY = datetime(2026, 1, 10, tzinfo=UTC).timestamp()


def refused_usage(cli: CLI, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """stderr of a command argparse refuses (exit 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli(*args)
    assert exited.value.code == EXIT_USAGE
    return capsys.readouterr().err


# ---- 1. a wrong word after a command is the command's error, in its usage --------------------------


@pytest.mark.parametrize(
    ("args", "prog", "extras"),
    [
        (
            ["account", "set", "ACME", "--sender", "+48", "500", "100", "200"],
            "smsgw account set",
            "500 100 200",
        ),
        (["status", "--jsn"], "smsgw status", "--jsn"),
        (["outbox", "list", "--all"], "smsgw outbox list", "--all"),
    ],
)
def test_an_unknown_argument_is_refused_in_the_commands_own_usage(
    cli: CLI, capsys: pytest.CaptureFixture[str], args: list[str], prog: str, extras: str
) -> None:
    err = refused_usage(cli, capsys, *args)
    assert err.startswith(f"usage: {prog} "), err
    assert f"{prog}: error: unrecognized arguments: {extras}\n" in err, err
    assert "COMMAND ..." not in err  # not the top-level usage


def test_a_value_with_spaces_is_told_to_be_quoted(cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused_usage(cli, capsys, "account", "set", "ACME", "--sender", "+48", "500", "100", "200")
    assert "--sender '+48 500 100 200'" in err, err
    # A misspelt option is no value cut by spaces: nothing about quotes.
    assert "quote" not in refused_usage(cli, capsys, "status", "--jsn")
    # Nor after an option that takes no value: `--wait` is no value cut short.
    assert "quote" not in refused_usage(cli, capsys, "send", "601123456", "--wait", "hi", "there")


def test_short_config_option_after_the_command_is_sent_before_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    res = run(config, "status", "-c", str(config))
    assert res.returncode == EXIT_USAGE, res.stderr
    assert res.stderr.startswith("usage: smsgw status "), res.stderr
    assert f"smsgw status: error: unrecognized arguments: -c {config}" in res.stderr
    assert "-c goes before the command: smsgw -c FILE status" in res.stderr, res.stderr
    assert "--config FILE" in res.stderr  # the spelling taken after the command
    assert "Traceback" not in res.stderr


# ---- 5. a limit out of range in words ---------------------------------------------------------------


def test_a_negative_limit_is_refused_in_words(cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    for value in ("-5", "abc", "1.5", "9" * 25):
        code, _, err = cli("account", "set", "ACME", "--monthly-limit", value)
        assert code != 0, value
        assert "a whole number of SMS parts, 0 or more, or 'none' for no limit" in err, err
        assert "9223372036854775807" not in err, err
    # The real bound still holds: one past SQLite's INTEGER is refused, the largest one taken.
    code, _, err = cli("account", "set", "ACME", "--daily-limit", str(2**63))
    assert code != 0 and "too large" in err, err
    cli.ok("account", "set", "ACME", "--daily-limit", str(2**63 - 1))
    cli.ok("account", "set", "ACME", "--monthly-limit", "none")


# ---- 6. an account name in the wrong case --------------------------------------------------------------


def test_an_account_name_in_the_wrong_case_names_the_one_meant(cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    code, out, err = cli("user", "add", "x@acme.example", "--account", "acme")
    assert code == 1 and out == [], err
    assert "no account named 'acme' (did you mean 'ACME'?)" in err, err
    code, _, err = cli("account", "show", "acme")
    assert code == 1 and "(did you mean 'ACME'?)" in err, err
    # Names stay case-sensitive: nothing was added to ACME under 'acme'.
    assert not any("x@acme.example" in line for line in cli.ok("user", "list"))
    # Two that differ in case only: no guess among them.
    cli.ok("account", "add", "Acme")
    code, _, err = cli("account", "show", "aCME")
    assert code == 1 and "did you mean" not in err and "no account named 'aCME'" in err, err


# ---- 2, 3 and 4: `send` and `queue retry` against the running daemon ---------------------------------


async def test_send_takes_a_spaced_number_and_retry_of_a_delivered_message_is_refused(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        smtp_port = free_port()
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=smsc.port, smtp_port=smtp_port))
        proc = await start_daemon(config, smtp_port)
        try:
            res = await asyncio.to_thread(
                run, config, "send", "--as", STAFF, "+48 (601) 123-461", "hello", "--wait"
            )
            assert res.returncode == 0, res.stderr
            assert "accepted: 250" in res.stdout
            # `--wait` prints each state it sees: `submitted` first when it looked before the report
            *_, line = [w for w in res.stdout.splitlines() if w.startswith("message ")]
            assert line.endswith(" to +48601123461: delivered"), res.stdout
            message_id = line.split()[1]
            for letters in ("+48 601 ABC 461", "call me"):
                res = await asyncio.to_thread(run, config, "send", "--as", STAFF, letters, "x")
                assert res.returncode == EXIT_USAGE and "is not a phone number" in res.stderr, res.stderr
            retry = await asyncio.to_thread(run, config, "queue", "retry", message_id)
            cancel = await asyncio.to_thread(run, config, "queue", "cancel", message_id)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 60)
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn:
        [(rcpt, state)] = conn.execute("SELECT rcpt, state FROM messages").fetchall()
    assert rcpt == f"+48601123461@{DOMAIN}"  # the cleaned digits, as the mail's recipient
    assert cancel.returncode == EXIT_FAILURE
    # It said "has no part waiting" where retry names the state.
    assert f"message {message_id} is delivered: no part of it waits" in cancel.stderr, cancel.stderr
    assert retry.returncode == EXIT_FAILURE, retry.stdout
    assert retry.stdout == "" and "queued again" not in retry.stderr
    assert f"message {message_id} is delivered" in retry.stderr, retry.stderr
    assert "nothing" in retry.stderr
    assert state == "delivered"  # left as it was


def test_a_billed_account_in_the_wrong_case_names_the_file_meant(cli: CLI) -> None:
    # ACME made in January (as a store with an earlier clock), February billed by the CLI.
    with closing(Store.open(cli.path.parent / "state" / "smsgw.db", clock=lambda: JANUARY)) as store:
        store.accounts.add_account("ACME")
    cli.ok("billing", "run", "--month", "2026-02")
    code, _, err = cli("billing", "show", "--month", "2026-02", "--account", "acme")
    assert code == 1 and "no account named 'acme' was in it (did you mean 'ACME'?)" in err, err
    code, _, err = cli("billing", "show", "--month", "2026-02", "--account", "ACME-typo")
    assert code == 1 and "did you mean" not in err, err
