# ruff: noqa: F811  (the tests take test_cli_errors's `config, db` fixture, imported by name)
"""Bad names, addresses and senders at the command line, and the shipped maildir relay: empty or spaced
account names, networks that are not ones, senders an SMSC would cut (the panel refusing the same),
maildir mails private whatever the umask. One line naming the problem, the right exit status, never a
traceback, as in test_cli_errors.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_FAILURE, EXIT_USAGE
from gateway.store.db import Store
from tests.conftest import mode
from tests.test_cli_errors import (
    account_row,
    config,  # noqa: F401  (the fixture)
    db,  # noqa: F401  (the fixture)
    one_line,
    run,
)
from tests.web_helpers import OPERATOR, as_user, csrf_of, panel_store, web_context

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
