"""`user add` and `account set --billing-to` on addresses that are most likely typos.

`user add bob@acme.exmaple --account ACME` beside users @acme.example was taken without a word; a
one-label domain (`x@acme`, `--billing-to billing@acme`) was taken too; and a second `--billing-to`
replaced the first address saying only "account ACME updated". The CLI as processes, a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.conftest import free_port
from tests.test_process import smsgw, write_config


def ok(config: Path, *args: str) -> str:
    res = smsgw(config, *args)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_a_near_domain_is_noted_a_one_label_domain_refused_and_a_replaced_billing_address_said(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    (tmp_path / "state").mkdir()
    Store.open(tmp_path / "state" / "smsgw.db").close()  # as the daemon's first start leaves it
    ok(config, "account", "add", "ACME")
    for email in ("anna@acme.example", "jan@acme.example"):
        assert "note" not in ok(config, "user", "add", email, "--account", "ACME")
    said = ok(config, "user", "add", "bob@acme.exmaple", "--account", "ACME")
    assert "user bob@acme.exmaple added to account ACME" in said, said
    note = (
        "note: bob@acme.exmaple's domain is none of account ACME's other users' and looks like acme.example"
    )
    assert note in said and "smsgw user remove bob@acme.exmaple" in said, said
    assert "note" not in ok(config, "user", "add", "ewa@other.example", "--account", "ACME")  # not near

    res = smsgw(config, "user", "add", "x@acme", "--account", "ACME")
    assert res.returncode != 0 and "'x@acme': its domain 'acme' has no dot" in res.stderr, res.stderr
    res = smsgw(config, "account", "set", "ACME", "--billing-to", "billing@acme")
    assert res.returncode != 0 and "--billing-to: 'billing@acme': its domain 'acme' has no dot" in res.stderr
    assert "x@acme" not in ok(config, "user", "list")

    assert "billing-to" not in ok(config, "account", "set", "ACME", "--billing-to", "billing@acme.pl")
    said = ok(config, "account", "set", "ACME", "--billing-to", "books@acme.pl")
    assert "account ACME updated" in said, said
    assert "billing-to billing@acme.pl → books@acme.pl (replaced" in said, said
