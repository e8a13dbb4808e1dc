"""A relay network is one account's (SPEC R-2.1 b), and a sender number shared without a reply pool
is said wherever it is set.

`account set beta --add-network 127.0.0.0/29` over acme's mail server at 127.0.0.2 was taken without
a word: that server could then send as any of beta's users, on beta's bill, with no password. And
`account set beta --sender` with acme's number said only "account beta updated", though acme's
customers' answers then went to whichever beta user texted last. The CLI runs as a process on a real
SQLite file; the relay is asked over real SMTP sessions from the addresses in question.
"""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import STAFF, config_text, free_port, running_gateway
from tests.test_cli_errors import run, write_config

BOB = "bob@beta.example"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """acme at 127.0.0.2 sending from +48100200301, beta at 127.0.0.3 from +48100200302."""
    path = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    accounts = (("acme", "127.0.0.2/32", "+48100200301"), ("beta", "127.0.0.3/32", "+48100200302"))
    for name, host, number in accounts:
        res = run(path, "account", "add", name, "--relay-network", host, "--sender", number)
        assert res.returncode == 0, res.stderr
    return path


def test_account_set_says_a_sender_number_now_shared_as_account_add_does(config: Path) -> None:
    res = run(config, "account", "set", "beta", "--sender", "+48100200301")
    assert res.returncode == 0, res.stderr
    assert "account beta updated" in res.stdout
    assert "note: accounts acme, beta all send from +48100200301 and [replies] pool is empty" in res.stdout
    res = run(config, "account", "set", "beta", "--sender", "+48100200302")  # its own again: nothing said
    assert res.returncode == 0 and "send from" not in res.stdout, res.stdout


def test_a_network_holding_another_accounts_is_refused_naming_it(config: Path) -> None:
    res = run(config, "account", "set", "beta", "--add-network", "127.0.0.0/29")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "--add-network 127.0.0.0/29 holds account acme's relay network 127.0.0.2/32" in res.stderr
    assert "Traceback" not in res.stderr and "updated" not in res.stdout
    assert "127.0.0.0/29" not in run(config, "account", "show", "beta").stdout  # nothing written
    # The very network another account has: a mail server there would be either's.
    res = run(config, "account", "add", "gamma", "--relay-network", "127.0.0.2/32")
    assert res.returncode == 1 and "127.0.0.2/32 is account acme's relay network" in res.stderr, res.stderr
    assert "gamma" not in run(config, "account", "list").stdout
    # Its own network again, and one of nobody's, are taken.
    assert run(config, "account", "set", "acme", "--add-network", "127.0.0.2/32").returncode == 0
    res = run(config, "account", "set", "beta", "--add-network", "127.0.0.8/29")
    assert res.returncode == 0 and "account beta updated" in res.stdout, res.stderr
    # A host inside another account's wider network (as `smsgw send` advises for 127.0.0.1) is
    # taken, and it is said that the host is now the narrower network's account's alone.
    res = run(config, "account", "add", "gamma", "--relay-network", "127.0.0.9/32")
    assert res.returncode == 0, res.stderr
    assert (
        "note: 127.0.0.9/32 is inside account beta's relay network 127.0.0.8/29: mail from there is now"
        " taken only from users of account gamma, no longer of beta"
    ) in res.stdout, res.stdout


def test_check_config_names_overlaps_stored_before(config: Path) -> None:
    # As an older version, the panel or a config seed could store them.
    with sqlite3.connect(config.parent / "state" / "smsgw.db") as conn:
        conn.execute(
            "INSERT INTO account_networks (account_id, cidr)"
            " SELECT id, '127.0.0.0/29' FROM accounts WHERE name = 'beta'"
        )
    conn.close()
    res = run(config, "check-config")
    assert res.returncode == 0, res.stderr
    [line] = [line for line in res.stderr.splitlines() if "share relay network addresses" in line]
    assert "accounts acme (127.0.0.2/32) and beta (127.0.0.0/29)" in line, line
    assert "taken only from users of account acme" in line, line


BETA = """
[[account]]
name = "beta"
relay_networks = ["127.0.0.0/29", "127.0.0.4/32"]
users = ["bob@beta.example"]
"""


def mail_from(port: int, sender: str, source: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.example")
        code, text = c.docmd("MAIL", f"FROM:<{sender}>")
        return f"{code} {text.decode()}"


async def test_a_mail_server_in_two_accounts_networks_sends_only_as_the_narrower_ones(tmp_path: Path) -> None:
    """acme's mail server (127.0.0.2/32) inside beta's 127.0.0.0/29 sent as beta's users, on beta's
    bill. A network both list alike (127.0.0.4/32, one server serving two companies) stays both's."""
    from gateway.config import load_config

    text = config_text(tmp_path, smsc_port=free_port(), extra=BETA)
    text = text.replace('["127.0.0.0/8"]', '["127.0.0.2/32", "127.0.0.4/32"]', 1)
    async with running_gateway(load_config(write_config(tmp_path, text))) as gw:

        def ask(sender: str, source: str) -> str:
            return mail_from(gw.port, sender, source)

        acme_as_bob, acme_as_anna = [await asyncio.to_thread(ask, s, "127.0.0.2") for s in (BOB, STAFF)]
        beta_as_bob, beta_as_anna = [await asyncio.to_thread(ask, s, "127.0.0.3") for s in (BOB, STAFF)]
        shared = [await asyncio.to_thread(ask, s, "127.0.0.4") for s in (BOB, STAFF)]
    assert acme_as_bob.startswith("550 5.7.1 Relay access denied: sender not allowed"), acme_as_bob
    assert acme_as_anna.startswith("250"), acme_as_anna
    assert beta_as_bob.startswith("250"), beta_as_bob
    assert beta_as_anna.startswith("550 5.7.1"), beta_as_anna
    assert all(said.startswith("250") for said in shared), shared
