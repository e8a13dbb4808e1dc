"""The walkthrough's demo account left open once the shipped config goes to a real operator.

The README's step (simulator off, `[[smsc]]` at the operator) kept account "demo" relaying from
127.0.0.0/8 without a login, so any program on the machine sent paid SMS as demo@example.com, and
check-config said nothing of it; the account stays in the database when its block is deleted. The
shipped config.toml edited as that step says, the real CLI in a subprocess, a real SQLite file.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.test_first_day_cli import ROOT, run

DEMO = "account demo relays from 127.0.0.0/8 without a login"


def real_operator(tmp_path: Path, block: bool = True, link: str = 'host = "192.0.2.10"') -> Path:
    """The shipped config after the README's "to use a real operator" step."""
    text = (ROOT / "config.toml").read_text()
    text = text.replace('host = "127.0.0.1"', link, 1)
    text, changed = re.subn(r"(\[simulator\][^\n]*\n(?:.*\n)*?)enabled = true", r"\1enabled = false", text)
    assert changed == 1
    if not block:
        start = text.index("[[account]]")
        text = text[:start] + "".join(text[start:].split("\n\n", 1)[1:])  # the last block, if so
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    (tmp_path / "var").mkdir()
    return config


def warnings(config: Path) -> str:
    res = run("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    return res.stderr


def test_check_config_names_the_demo_account_while_a_link_goes_to_an_operator(tmp_path: Path) -> None:
    config = real_operator(tmp_path)
    said = warnings(config)
    assert (
        f"{DEMO} (any program here sends paid SMS) and has the example user demo@example.com, and a link"
        " goes to an operator: `smsgw account set demo --remove-network 127.0.0.0/8`, `smsgw user remove"
        " demo@example.com` (or `smsgw account suspend demo`), and delete its [[account]] block" in said
    ), said
    assert "[gateway] domains: sms.example.com is an example domain" in said
    # The shipped config itself, on the simulator, is the walkthrough: nothing of it.
    shipped = run("--config", str(ROOT / "config.toml"), "check-config")
    assert "account demo" not in shipped.stderr and "example domain" not in shipped.stderr


def test_the_stored_demo_account_is_named_after_its_block_is_deleted(tmp_path: Path) -> None:
    config = real_operator(tmp_path, block=False)
    assert "[[account]]\n" not in config.read_text()
    for args in (
        ("account", "add", "demo", "--relay-network", "127.0.0.0/8"),
        ("user", "add", "demo@example.com", "--account", "demo"),
    ):
        res = run("--config", str(config), *args)
        assert res.returncode == 0, res.stderr
    assert DEMO in warnings(config)
    res = run("--config", str(config), "account", "set", "demo", "--remove-network", "127.0.0.0/8")
    assert res.returncode == 0, res.stderr
    said = warnings(config)
    assert DEMO not in said and "account demo has the example user demo@example.com" in said, said
    with closing(sqlite3.connect(tmp_path / "var/smsgw.db")) as conn, conn:
        conn.execute("UPDATE accounts SET suspended_at = 1 WHERE name = 'demo'")
    assert "account demo" not in warnings(config)  # a suspended account sends nothing


def test_a_stored_demo_account_closed_by_the_admin_is_not_named_for_its_block(tmp_path: Path) -> None:
    # The block makes the account at the first start only; its network and user, once removed,
    # stay removed. The warning still said them, from the block, after the admin had closed both.
    config = real_operator(tmp_path)
    for args in (
        ("account", "add", "demo", "--relay-network", "127.0.0.0/8"),  # as the first start makes it
        ("user", "add", "demo@example.com", "--account", "demo"),
    ):
        res = run("--config", str(config), *args)
        assert res.returncode == 0, res.stderr
    assert DEMO in warnings(config)
    for args in (
        ("account", "set", "demo", "--remove-network", "127.0.0.0/8"),
        ("user", "remove", "demo@example.com"),
    ):
        res = run("--config", str(config), *args)
        assert res.returncode == 0, res.stderr
    said = warnings(config)
    assert "account demo" not in said, said
    assert "[gateway] domains: sms.example.com is an example domain" in said  # the config's own, still


def test_a_link_through_a_tunnel_on_loopback_goes_to_an_operator(tmp_path: Path) -> None:
    # An stunnel or ssh tunnel to the operator listens on 127.0.0.1: with the simulator off the link
    # is the operator's, and the walkthrough's leftovers were all silent for it.
    config = real_operator(tmp_path, link='host = "127.0.0.1"')
    config.write_text(config.read_text().replace("port = 2775", "port = 3700", 1))
    said = warnings(config)
    assert f"{DEMO} (any program here sends paid SMS)" in said, said
    assert "[gateway] domains: sms.example.com is an example domain" in said
    assert '[gateway] default_sender: "+48100200300" is the walkthrough\'s made-up number' in said
    assert '[mail] relay: "maildir:var/mail" keeps every outgoing mail on this machine' in said
    # A tunnel's link without a password binds with an empty one, which the operator refuses.
    text = config.read_text()
    config.write_text(text.replace(next(ln for ln in text.splitlines() if ln.startswith("password =")), ""))
    assert '[[smsc]] "simulator" password: neither password nor password_file is set' in warnings(config)
