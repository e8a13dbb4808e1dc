"""check-config's sender notes for the accounts the database holds, not only the `[[account]]` blocks.

A block only creates a missing account; most are made with `smsgw account add/set` or the panel.
check-config read the blocks alone: an account given `--sender ACME` got no note that phones cannot
answer it (R-1.11), one given a number libphonenumber does not know no note of how its answers are
matched, and with `[replies] pool` set no account was said to send from the pool (R-3.2). The real
command line in this process on a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_account_show import CLI

UNKNOWN = "is no number libphonenumber knows (region PL): answers are matched by digits, in whichever of"
VALID = "+48601000000"
ALPHA = "is alphanumeric: phones cannot answer it, replies are impossible"


def notes(cli: CLI) -> list[str]:
    return [line.removeprefix("note: ") for line in cli.ok("check-config") if line.startswith("note: ")]


def with_config(cli: CLI, tmp_path: Path, extra: str = "") -> CLI:
    """`cli` on the test config plus `extra` (a block, a section), its database where it was; a
    default sender libphonenumber knows, so that only the accounts' senders get notes."""
    text = config_text(tmp_path, smsc_port=free_port(), default_sender=VALID, extra=extra)
    cli.path.write_text(text)
    return cli


def test_stored_accounts_senders_get_the_notes_the_blocks_get(cli: CLI, tmp_path: Path) -> None:
    with_config(cli, tmp_path)
    assert notes(cli) == [f"account acme: sender '+48100200300' {UNKNOWN}" + _forms("100200300")]
    cli.ok("account", "add", "ACME2", "--sender", "ACME")
    cli.ok("account", "add", "odd", "--sender", "+48100200399")
    cli.ok("account", "add", "plain")  # the default sender's: nothing of its own to say
    assert notes(cli) == [
        f"stored account ACME2: sender 'ACME' {ALPHA}",
        f"account acme: sender '+48100200300' {UNKNOWN}" + _forms("100200300"),
        f"stored account odd: sender '+48100200399' {UNKNOWN}" + _forms("100200399"),
    ]
    # One note a number: a stored account sending from the block's number adds nothing to its note.
    cli.ok("account", "set", "odd", "--sender", "+48100200300")
    assert notes(cli) == [
        f"stored account ACME2: sender 'ACME' {ALPHA}",
        f"account acme: sender '+48100200300' {UNKNOWN}" + _forms("100200300"),
    ]


def test_a_block_and_its_stored_account_are_said_once(cli: CLI, tmp_path: Path) -> None:
    with_config(cli, tmp_path, '\n[[account]]\nname = "shop"\nsender = "SHOP"\n')
    assert f"account shop: sender 'SHOP' {ALPHA}" in notes(cli)  # no database yet: the block
    cli.ok("account", "add", "shop", "--sender", "SHOP")
    assert [n for n in notes(cli) if "shop" in n] == [f"account shop: sender 'SHOP' {ALPHA}"]
    # Set apart from its block, the account sends from what is stored (the block only creates a
    # missing account): that is said, of the stored account, and the block's name no more.
    cli.ok("account", "set", "shop", "--sender", "SHOPNEW")
    assert [n for n in notes(cli) if "shop" in n] == [f"stored account shop: sender 'SHOPNEW' {ALPHA}"]


def test_with_a_pool_each_number_sender_is_said_to_go_from_the_pool(cli: CLI, tmp_path: Path) -> None:
    cli.ok("account", "add", "odd", "--sender", "+48601000001")
    cli.ok("account", "add", "name", "--sender", "NAME")
    cli.ok("account", "add", "plain")
    with_config(cli, tmp_path, '\n[replies]\npool = ["+48601000100..+48601000199"]\n')
    pooled = "[replies] pool is set: {} SMS go out from the pool's numbers, not from {} (each conversation"
    said = [n for n in notes(cli) if "[replies] pool is set" in n]
    assert [n.split(" (each")[0] + " (each conversation" for n in said] == [
        "account acme: " + pooled.format("the account's", "+48100200300"),
        "stored account odd: " + pooled.format("the account's", "+48601000001"),
        "stored account plain: " + pooled.format("the account's", "[gateway] default_sender +48601000000"),
    ]  # an alphanumeric sender is sent as it is: no pool note for account name
    cli.ok("account", "add", "plain2")
    said = [n for n in notes(cli) if "default_sender +48601000000" in n]
    assert said and said[0].startswith(
        "stored account plain, stored account plain2: [replies] pool is set: their"
    )


def test_read_beside_a_writer_and_never_creates_the_database(cli: CLI, tmp_path: Path) -> None:
    db = tmp_path / "state" / "smsgw.db"
    notes(cli)
    assert not db.exists()  # check-config made no database for the stored accounts
    cli.ok("account", "add", "ACME2", "--sender", "ACME")
    # The daemon (here another connection) in the middle of a write: the notes are read all the same.
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE accounts SET sender = 'OTHER' WHERE name = 'ACME2'")
        assert f"stored account ACME2: sender 'ACME' {ALPHA}" in notes(cli)
        writer.execute("ROLLBACK")
    finally:
        writer.close()


def _forms(digits: str) -> str:
    return f" +48{digits}, 0048{digits}, 48{digits} or {digits} (national) the SMSC writes"
