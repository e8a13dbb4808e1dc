"""`[[account]]` blocks written before three rules came: an account name holding a character that does
not print (a no-break space, a zero-width space), a user whose domain has no dot (`ops@BEST`), an
IPv4-compatible relay network (`::127.0.0.7/128`). The config refused them (exit 3), so a site that
upgraded with such a block could not start, though the block only creates a missing account and
changes nothing of a stored one. Now the config takes them, the start makes no new account so (and
logs why, at ERROR), and check-config says both: a warning for an account the start will not make, a
note for a stored one the block leaves as it is. A ZWNJ or ZWJ between letters of a script it shapes
is part of a name's spelling, taken; a name printed as another's is still refused.

The CLI and the daemon run as real processes on a real SQLite file; the relay is asked over SMTP.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.store.db import Store
from tests.conftest import STAFF, config_text, free_port
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon
from tests.test_relay_network_shared import logged, mail_from

NBSP = "Best\u00a0Sp"
BOB = "bob@best.example"
# As an older release stored the block below: its name, its one-label user, its network.
LEGACY = """
[[account]]
name = "Best\\u00a0Sp"
relay_networks = ["127.0.0.9/32", "::127.0.0.7/128"]
users = ["bob@best.example", "ops@BEST"]
"""


def blocks(tmp_path: Path, text: str, smtp_port: int = 0) -> Path:
    """The tests' config with `text` as its only [[account]] blocks, and a state directory."""
    base = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port).split("[[account]]")[0]
    (tmp_path / "state").mkdir(exist_ok=True)
    return write_config(tmp_path, base + text)


def store_legacy(config: Path, tmp_path: Path) -> None:
    """The database an older release left: `Best\\xa0Sp` seeded from LEGACY, as it took it."""
    cfg = parse_config(config_text(tmp_path, smsc_port=free_port()), source="t", base_dir=tmp_path)
    store = Store.open(cfg.db_path)
    try:
        store.accounts.add_account(NBSP, networks=["127.0.0.9/32", "::7f00:7/128"])
        for user in (BOB, "ops@BEST"):
            store.accounts.add_user(user, NBSP)
    finally:
        store.close()


def accounts(config: Path) -> list[str]:
    """The accounts stored, read off the database file itself."""
    with closing(sqlite3.connect(config.parent / "state" / "smsgw.db")) as conn:
        return sorted(name for (name,) in conn.execute("SELECT name FROM accounts"))


@pytest.mark.parametrize(
    ("key", "value", "read"),
    [
        ("name", '"Best\\u00a0Sp"', NBSP),
        ("name", '"\\u200bdemo"', "\u200bdemo"),
        ("name", '"\\u3164demo"', "\u3164demo"),
        ("users", '["ops@ACME"]', ["ops@ACME"]),
        ("users", '["demo@example"]', ["demo@example"]),
        ("relay_networks", '["::127.0.0.7/128"]', ["::127.0.0.7/128"]),
    ],
)
def test_the_config_takes_a_block_written_before_the_newer_rules(
    tmp_path: Path, key: str, value: str, read: object
) -> None:
    text = config_text(tmp_path, smsc_port=free_port()).split("[[account]]")[0]
    block = {"name": '"acme"', key: value}
    text += "[[account]]\n" + "".join(f"{k} = {v}\n" for k, v in block.items())
    cfg = parse_config(text, source="config.toml", base_dir=tmp_path)
    assert getattr(cfg.account[0], key) == read


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("name", '"#acme"', "starts with '#'"),
        ("name", '"Total"', "is a word of the monthly billing summary"),
        ("name", '"a\\u202eb"', "U+202E (a bidi control"),
        ("users", '["*@acme.example"]', "has a wildcard (*)"),
        ("relay_networks", '["::ffff:127.0.0.7/128"]', "IPv4-mapped IPv6 network"),
        ("relay_networks", '["198.51.100.7/0"]', "did you mean 198.51.100.7/32?"),
    ],
)
def test_what_was_refused_before_stays_refused(tmp_path: Path, key: str, value: str, said: str) -> None:
    text = config_text(tmp_path, smsc_port=free_port()).split("[[account]]")[0]
    block = {"name": '"acme"', key: value}
    text += "[[account]]\n" + "".join(f"{k} = {v}\n" for k, v in block.items())
    with pytest.raises(ConfigError, match=r"\[\[account\]\]") as caught:
        parse_config(text, source="config.toml", base_dir=tmp_path)
    assert said in str(caught.value), str(caught.value)


async def test_a_site_upgraded_with_its_stored_accounts_block_starts_and_serves(tmp_path: Path) -> None:
    port = free_port()
    config = blocks(tmp_path, LEGACY, smtp_port=port)
    store_legacy(config, tmp_path)
    check = await asyncio.to_thread(run, config, "check-config")
    assert check.returncode == 0, (check.stdout, check.stderr)
    note = (
        "note: [[account]] \"Best\\u00A0Sp\" names account 'Best\\xa0Sp', stored already: the block creates"
        " nothing and the account is kept as it is, though a new account could not be made so (account"
        " name 'Best\\xa0Sp' holds U+00A0"
    )
    assert note in check.stdout, check.stdout
    assert "ops@BEST" not in check.stderr, check.stderr  # no `user add` that would be refused
    proc = await start_daemon(config, port)
    try:
        answer = await asyncio.to_thread(mail_from, port, BOB, "127.0.0.9")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert answer.startswith("250"), answer
    log = tmp_path / "daemon.log"
    assert not logged(log, "account.not_seeded", 0.0), log.read_text()[-2000:]
    assert accounts(config) == [NBSP]


NEW = f'''
[[account]]
name = "acme"
relay_networks = ["127.0.0.0/24"]
users = ["{STAFF}"]

[[account]]
name = "Best Sp"

[[account]]
name = "\\u200bdemo"

[[account]]
name = "ops"
users = ["ops@ACME", "{BOB}"]

[[account]]
name = "seven"
relay_networks = ["::127.0.0.7/128"]
'''


async def test_a_new_block_breaking_them_makes_no_account_and_check_config_says_why(tmp_path: Path) -> None:
    port = free_port()
    config = blocks(tmp_path, NEW, smtp_port=port)
    store_legacy(config, tmp_path)
    check = await asyncio.to_thread(run, config, "check-config")
    assert check.returncode == 0, (check.stdout, check.stderr)
    said = {
        "Best Sp": "account name 'Best Sp' prints as 'Best Sp' in the billing files and their summary, as"
        " account 'Best\\xa0Sp' does (it holds a character that does not print): give another name;"
        ' or, if the block means that account, write its name as stored: name = "Best\\u00A0Sp"',
        "\u200bdemo": "account name '\\u200bdemo' holds U+200B (a format character, which shows as nothing):"
        " give a plain name in the block",
        "ops": "users: 'ops@ACME': its domain 'ACME' has no dot; a mail domain has at least two labels"
        " (ACME.example, ACME.pl): write the whole domain",
        "seven": "relay_networks: '::127.0.0.7/128' is an IPv4-compatible (deprecated) IPv6 network, which"
        " no client address is: write 127.0.0.7/32",
    }
    for name, why in said.items():
        line = f"the start does not create account {name!r}: {why}"
        assert "smsgw: warning: [[account]] " in check.stderr and line in check.stderr, (line, check.stderr)
    # Not "bob stays Best\xa0Sp's when the start creates account ops": it creates no account ops.
    assert "when the start creates account ops" not in check.stderr, check.stderr
    proc = await start_daemon(config, port)
    log = tmp_path / "daemon.log"
    try:
        refused = await asyncio.to_thread(logged, log, "account.not_seeded", 10.0)
        answer = await asyncio.to_thread(mail_from, port, STAFF, "127.0.0.3")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert answer.startswith("250"), answer  # acme's block made acme, as before
    assert {e["account"]: e["level"] for e in refused} == dict.fromkeys(said, "error"), refused
    for entry in refused:
        assert said[str(entry["account"])] in str(entry["problem"]), entry
    assert accounts(config) == sorted([NBSP, "acme"])


async def test_check_config_and_the_start_say_a_block_printed_as_a_stored_account(tmp_path: Path) -> None:
    # "Best Sp" typed for the stored "Best\xa0Sp" passed check-config, and every start logged at ERROR.
    port = free_port()
    config = blocks(tmp_path, '[[account]]\nname = "Best Sp"\nusers = ["anna@best.example"]\n', port)
    store_legacy(config, tmp_path)
    check = await asyncio.to_thread(run, config, "check-config")
    assert check.returncode == 0, (check.stdout, check.stderr)
    assert (
        "smsgw: warning: [[account]] \"Best Sp\": the start does not create account 'Best Sp': account name"
        " 'Best Sp' prints as 'Best Sp'" in check.stderr
    ), check.stderr
    assert 'write its name as stored: name = "Best\\u00A0Sp"' in check.stderr, check.stderr
    # Its user is not said as one to add to an account the start makes: it makes none.
    assert "anna@best.example" not in check.stderr, check.stderr
    proc = await start_daemon(config, port)
    try:
        [entry] = await asyncio.to_thread(logged, tmp_path / "daemon.log", "account.not_seeded", 10.0)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert entry["account"] == "Best Sp" and "write its name as stored" in str(entry["problem"]), entry
    assert accounts(config) == [NBSP]
    # As the warning says: the block named as stored makes nothing and is a note.
    config.write_text(config.read_text().replace('"Best Sp"', '"Best\\u00A0Sp"'))
    check = await asyncio.to_thread(run, config, "check-config")
    assert check.returncode == 0 and "does not create" not in check.stderr, check.stderr


SINHALA = "\u0dc1\u0dca\u200d\u0dbb\u0dd3 Lanka"  # Sri Lanka, its Sri with a ZWJ
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # with a ZWNJ between its words' parts


def test_a_joiner_between_letters_of_a_script_it_shapes_is_taken_and_nowhere_else(tmp_path: Path) -> None:
    config = blocks(tmp_path, "")
    for name in (SINHALA, PERSIAN):
        res = run(config, "account", "add", name)
        assert res.returncode == 0, (name, res.stderr)
    # The billing files print a joiner as a space: the name with a plain space there is another's print.
    spaced = PERSIAN.replace("\u200c", " ")
    res = run(config, "account", "add", spaced)
    assert res.returncode == 2 and f"as account {PERSIAN!r} does" in res.stderr, res.stderr
    for name in ("a\u200cb", "\u200c" + PERSIAN, PERSIAN + "\u200d", "\u0dc1\u0dca\u200d\u0645"):
        res = run(config, "account", "add", name)
        assert res.returncode == 2, (name, res.stderr)
        assert "shows as nothing here; it is taken between two letters of a script it shapes" in res.stderr
    assert accounts(config) == sorted([SINHALA, PERSIAN])
