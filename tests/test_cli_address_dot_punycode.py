"""`user add` of an address with DNS's trailing dot (`e@example.com.`) got "'example.com.' is not a mail
domain: each user is one address, of one mailbox: add each one that sends", the wording for a
wildcard; one whose domain is punycode one letter from the account's others (g@xn--exmple-cua.com,
which reads exämple.com, beside users @example.com) got no note. The CLI as processes, a real SQLite
file."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.conftest import free_port
from tests.test_cli_address_typos import ok
from tests.test_process import smsgw, write_config


def test_a_trailing_dot_is_said_and_a_punycode_near_miss_noted(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    (tmp_path / "state").mkdir()
    Store.open(tmp_path / "state" / "smsgw.db").close()  # as the daemon's first start leaves it
    ok(config, "account", "add", "ACME")
    ok(config, "user", "add", "anna@example.com", "--account", "ACME")

    res = smsgw(config, "user", "add", "e@example.com.", "--account", "ACME")
    assert res.returncode != 0, res.stdout
    said = "'e@example.com.': a mail address has no dot at its end: add 'e@example.com'"
    assert said in res.stderr and "wildcard" not in res.stderr and "each user is one" not in res.stderr

    said = ok(config, "user", "add", "g@xn--exmple-cua.com", "--account", "ACME")
    note = (
        "note: g@xn--exmple-cua.com's domain (it reads exämple.com) is none of account ACME's other users'"
        " and looks like example.com"
    )
    assert note in said, said
