"""check-config's pool note names a few of the accounts that share a sender, and how many more.

Every account without a sender of its own sends from the default one: with `[replies] pool` set, the
note saying the pool sends for them joined every such account's name, and a thousand stored accounts
made one note line of over 12,000 characters. The real command line in this process on a real
SQLite file; the accounts are written to it as `account add` writes them, a thousand runs of it
being no more of a test.
"""

from __future__ import annotations

import sqlite3

from tests.test_account_show import CLI
from tests.test_check_config_stored_senders import VALID, notes, with_config

POOL = '\n[replies]\npool = ["+48601000100..+48601000199"]\n'


def _add_stored(cli: CLI, names: list[str]) -> None:
    db = cli.path.parent / "state" / "smsgw.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.executemany("INSERT INTO accounts (name, created_at) VALUES (?, 0)", [(n,) for n in names])
    finally:
        conn.close()


def _default_note(cli: CLI) -> str:
    said = [n for n in notes(cli) if f"default_sender {VALID}" in n]
    assert len(said) == 1
    return said[0]


def test_a_thousand_accounts_sharing_the_default_sender_make_one_short_note(cli: CLI, tmp_path) -> None:
    cli.ok("account", "add", "plain")
    _add_stored(cli, [f"acct{i:04d}" for i in range(1, 1000)])
    with_config(cli, tmp_path, POOL)
    note = _default_note(cli)
    assert note.startswith(
        "stored account acct0001, stored account acct0002, stored account acct0003,"
        " stored account acct0004, stored account acct0005 and 995 more: [replies] pool is set: their SMS"
    )
    assert len(note) < 400


def test_up_to_five_accounts_are_all_named(cli: CLI, tmp_path) -> None:
    cli.ok("account", "add", "plain")
    _add_stored(cli, ["plain2", "plain3", "plain4", "plain5"])
    with_config(cli, tmp_path, POOL)
    names = ", ".join(f"stored account {n}" for n in ("plain", "plain2", "plain3", "plain4", "plain5"))
    assert _default_note(cli).startswith(f"{names}: [replies] pool is set: their SMS")
    _add_stored(cli, ["plain6"])
    assert _default_note(cli).startswith(f"{names} and 1 more: [replies] pool is set: their SMS")
