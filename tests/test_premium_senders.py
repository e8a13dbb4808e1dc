"""No account sends from one of the gateway's premium numbers (R-4.4), in any form an SMSC writes it.

`account set acme --sender 7355` was taken: staff SMS then left from the short code, and a phone
answering one sent a premium SMS (3.00 PLN) that has no password and went to the premium fallback
address, never to the staff member. The CLI, the config and the panel refuse it naming the premium
number; a sender stored before the rule is warned of by check-config and at the start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE
from gateway.cli.stored import start_warnings
from gateway.config import load_config
from tests.conftest import config_text, free_port
from tests.test_cli_errors import account_row, one_line, run, write_config
from tests.test_config_checks import smsgw
from tests.web_helpers import OPERATOR, as_user, csrf_of, panel_store, web_context

PREMIUM = '\n[premium]\nnumbers = ["7355"]\n'
NAMED = "is the premium number 7355 ([premium] numbers)"
FORMS = ["7355", "+487355", "487355", "00487355"]  # as an SMSC writes the short code


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A config with premium number 7355 and the database of account acme, made by the CLI itself."""
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port(), extra=PREMIUM))
    (tmp_path / "state").mkdir()
    assert run(config, "account", "add", "acme", "--sender", "+48100200300").returncode == 0
    return tmp_path / "state" / "smsgw.db"


@pytest.mark.parametrize("sender", FORMS)
def test_the_cli_refuses_a_premium_number_as_a_sender(tmp_path: Path, db: Path, sender: str) -> None:
    config = tmp_path / "config.toml"
    res = run(config, "account", "set", "acme", "--sender", sender)
    assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
    line = one_line(res)
    assert f"--sender: sender {sender!r} {NAMED}" in line and "3.00 PLN" in line, line
    assert account_row(db, "acme") == ("+48100200300", None, None)
    res = run(config, "account", "add", "beta", "--sender", sender)
    assert res.returncode == EXIT_USAGE and NAMED in one_line(res)
    assert account_row(db, "beta") is None


def test_the_cli_still_takes_a_number_that_only_ends_in_the_short_code(tmp_path: Path, db: Path) -> None:
    res = run(tmp_path / "config.toml", "account", "set", "acme", "--sender", "+48100207355")
    assert res.returncode == 0, res.stderr
    assert account_row(db, "acme") == ("+48100207355", None, None)


@pytest.mark.parametrize(
    ("where", "old", "new"),
    [
        ('[[account]] "acme" sender: ', 'sender = "+48100200300"', 'sender = "+487355"'),
        ("[gateway] default_sender: ", "[gateway]\n", '[gateway]\ndefault_sender = "7355"\n'),
    ],
)
def test_check_config_and_run_refuse_a_premium_number_as_a_sender_in_the_config(
    tmp_path: Path, where: str, old: str, new: str
) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), extra=PREMIUM)
    assert old in text
    config = write_config(tmp_path, text.replace(old, new, 1))
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert f"{where}sender " in res.stderr and NAMED in res.stderr, res.stderr


async def test_the_panel_refuses_a_premium_number_as_a_sender(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, PREMIUM)
    form = {"split_mode": "concatenated", "dlr_mail": "none", "overflow": "truncate"}
    try:
        async with as_user(web, OPERATOR) as c:
            token = csrf_of((await c.get("/account")).text)
            r = await c.post("/account", data={**form, "csrf": token, "sender": "7355"})
            assert r.status_code == 400 and "premium number 7355" in r.text, r.text
            assert store.accounts.get_account("acme").sender == "+48100200300"
            data = {"csrf": token, "action": "add", "name": "beta", "sender": "+487355"}
            r = await c.post("/operator/accounts", data=data)
            assert r.status_code == 400 and "premium number 7355" in r.text, r.text
            assert "beta" not in [a.name for a in store.accounts.list_accounts()]
    finally:
        web.counts.close()
        store.close()


def test_a_premium_sender_stored_before_the_rule_is_warned_of(tmp_path: Path, db: Path) -> None:
    # Kept (the start refusing it would stop every account's SMS), but said where the other stored
    # senders are, with the command that mends it.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE accounts SET sender = '00487355' WHERE name = 'acme'")
    conn.close()
    config = tmp_path / "config.toml"
    res = run(config, "check-config")
    assert res.returncode == 0, res.stderr
    assert f"warning: account acme: sender '00487355' {NAMED}" in res.stderr, res.stderr
    assert "smsgw account set 'acme' --sender" in res.stderr
    started = [(event, line) for event, line in start_warnings(load_config(config)) if NAMED in line]
    assert [event for event, _ in started] == ["config.sender_premium"], started
