"""An alphanumeric sender holds only what SMPP and CIMD2 carry and every SMSC reads alike: printable
ASCII that GSM 03.38's basic table has too. `account set --sender "Shop€"` was accepted, then every
SMS of the account failed as malformed with a Python codec error in each bounce (€ and Δ..Ξ have no
Latin-1 octet; é went out as a raw 0xE9 each SMSC reads its own way)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE
from gateway.senderrules import ALPHANUMERIC_SENDER_MAX, sender_problem
from tests.conftest import DOMAIN, mail, running_gateway
from tests.test_cli_errors import account_row, one_line, run, write_config
from tests.test_config_checks import config_file, smsgw
from tests.test_two_way import two_way_config
from tests.web_helpers import OPERATOR, as_user, csrf_of, panel_store, web_context

# GSM 03.38 has each of these but the backtick (€ and [ ] { } | ~ ^ \ behind its escape, the rest in
# its basic table), so the old rule let them through; none survives the way from the CLI to a phone.
ESCAPED = "[\\]^`{|}~"  # ASCII that GSM 03.38 has only behind an escape, or not at all
# Written out, not taken from the rule: printable ASCII but those.
ALLOWED = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ESCAPED)

REFUSED = [
    ("Shop€", "€"),
    ("ΔΦΓΛΩΠΨΣΘΞ", "ΔΦΓΛΩΠΨΣΘΞ"),
    ("Café", "é"),
    ("ÄÖÑÜ Shop", "ÄÖÑÜ"),
    ("ACME{x}", "{}"),
    ("A[B]C", "[]"),
    ("a|b~c^d\\e", "|~^\\"),
    ("back`tick", "`"),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A config and the database of account acme, made by the CLI itself."""
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    assert run(config, "account", "add", "acme", "--sender", "+48100200300").returncode == 0
    return tmp_path / "state" / "smsgw.db"


@pytest.mark.parametrize(("sender", "named"), REFUSED)
def test_the_cli_refuses_a_sender_no_smsc_sends_alike(
    tmp_path: Path, db: Path, sender: str, named: str
) -> None:
    config = tmp_path / "config.toml"
    res = run(config, "account", "set", "acme", "--sender", sender)
    assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
    line = one_line(res)
    assert f"--sender: sender {sender!r} holds {named!r}" in line, line
    assert "updated" not in res.stdout
    assert account_row(db, "acme") == ("+48100200300", None, None)
    res = run(config, "account", "add", "beta", "--sender", sender)
    assert res.returncode == EXIT_USAGE and f"holds {named!r}" in one_line(res)
    assert account_row(db, "beta") is None


def test_the_cli_takes_ascii_punctuation_a_phone_shows_as_typed(tmp_path: Path, db: Path) -> None:
    res = run(tmp_path / "config.toml", "account", "set", "acme", "--sender", "Shop & Co.")
    assert res.returncode == 0, res.stderr
    assert account_row(db, "acme") == ("Shop & Co.", None, None)


def test_check_config_warns_of_a_sender_stored_under_the_older_rule(tmp_path: Path, db: Path) -> None:
    # An account set before the rule keeps its sender, and every SMS of it fails at submit: the
    # check names the account and the command that mends it.
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE accounts SET sender = 'Shop€' WHERE name = 'acme'")
    conn.close()
    res = run(tmp_path / "config.toml", "check-config")
    assert res.returncode == 0, res.stderr
    assert "warning: account acme: sender 'Shop€' holds '€'" in res.stderr
    assert "smsgw account set 'acme' --sender" in res.stderr


def test_every_printable_ascii_character_but_the_escaped_ones_is_taken() -> None:
    for ch in map(chr, range(0x20, 0x7F)):
        problem = sender_problem(f"A{ch}B")
        assert (problem is None) == (ch not in ESCAPED), (ch, problem)
        assert problem is None or f"holds {ch!r}" in problem


@pytest.mark.parametrize(
    ("where", "old", "new"),
    [
        ('[[account]] "acme" sender: ', 'sender = "+48100200300"', 'sender = "Shop€"'),
        ("[gateway] default_sender: ", "[gateway]\n", '[gateway]\ndefault_sender = "Shop€"\n'),
    ],
)
def test_check_config_and_run_refuse_such_a_sender_in_the_config(
    tmp_path: Path, where: str, old: str, new: str
) -> None:
    config = config_file(tmp_path, (old, new))
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert f"{where}sender 'Shop€' holds '€'" in res.stderr, res.stderr


async def test_the_panel_refuses_what_the_cli_refuses(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    form = {"split_mode": "concatenated", "dlr_mail": "none", "overflow": "truncate"}
    try:
        async with as_user(web, OPERATOR) as c:
            token = csrf_of((await c.get("/account")).text)
            for sender, named in REFUSED[:3]:
                r = await c.post("/account", data={**form, "csrf": token, "sender": sender})
                assert r.status_code == 400 and named in r.text, r.text
                assert store.accounts.get_account("acme").sender == "+48100200300"
            data = {"csrf": token, "action": "add", "name": "beta", "sender": "Shop€"}
            r = await c.post("/operator/accounts", data=data)
            assert r.status_code == 400 and "holds &#39;€&#39;" in r.text, r.text
            assert "beta" not in [a.name for a in store.accounts.list_accounts()]
    finally:
        store.close()


def senders() -> list[str]:
    """Every allowed character, in senders of at most 11 (a leading or trailing space would be cut)."""
    step = ALPHANUMERIC_SENDER_MAX - 1
    return [f"{ALLOWED[i]} {ALLOWED[i + 1 : i + step]}" for i in range(0, len(ALLOWED), step)]


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_every_character_the_rule_takes_reaches_the_smsc_as_typed(
    tmp_path: Path, protocol: str
) -> None:
    # The rule is only right if what it takes goes out: each sender made of the allowed characters
    # reaches the built-in SMSC unchanged over both protocols.
    names = senders()
    assert all(sender_problem(s) is None for s in names)
    cfg = two_way_config(tmp_path, protocol, relay_port=1)
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for i, name in enumerate(names, 1):
            await gw.store.write(lambda name=name: gw.store.accounts.update_account("acme", sender=name))
            assert (await gw.send(mail(f"601123456@{DOMAIN}", body=f"sms {i}"))).error is None
            await gw.until(lambda i=i: len(core.records) == i)
        assert [r["source"] for r in core.records] == names
        assert {r["verdict"] for r in core.records} == {"delivered"}


@pytest.mark.parametrize(
    ("sender", "plain"),
    [("+48 100-200", "+48100200"), ("(22) 123-45-67", "221234567"), ("601 123 456", "601123456")],
)
def test_a_number_written_with_spaces_or_dashes_is_refused_naming_its_digits(sender: str, plain: str) -> None:
    # It passed as an alphanumeric name: check-config said only that phones could not answer it
    # (twice), and the SMS went out from "+48 100-200" as a name.
    assert (
        sender_problem(sender)
        == f"sender {sender!r} looks like a number: write it in digits only ({plain!r})"
    )


@pytest.mark.parametrize("sender", ["+48100200300", "12345", "24/7", "112 INFO", "1-2-3", "Lodz SA"])
def test_numbers_and_names_with_digits_are_not_taken_for_a_mistyped_number(sender: str) -> None:
    assert sender_problem(sender) is None
