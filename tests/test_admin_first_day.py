"""The administrator's first day: what the CLI says to the words and mistakes a new admin types.

Every command runs through the real CLI entry point (in this process, or as `smsgw` in a subprocess)
on a real SQLite file in tmp_path. The warnings of settings that open the gateway to everyone have a
module of their own (test_admin_first_day_open_settings.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path

import pytest

from gateway.config import load_config
from tests.test_account_show import CLI
from tests.test_first_day_cli import run

# ---- --sender default -------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["default", "Default"])
def test_sender_default_goes_back_to_the_configured_default_sender(cli: CLI, word: str) -> None:
    cli.ok("account", "add", "beta", "--sender", "+48600100200")
    code, out, err = cli("account", "set", "beta", "--sender", word)
    assert code == 0, err
    assert not any("alphanumeric" in line for line in out), out  # the word every other option takes
    assert "sender: default (+48100200300)" in cli.ok("account", "show", "beta")
    code, out, err = cli("account", "add", "gamma", "--sender", word)
    assert code == 0 and not any("alphanumeric" in line for line in out), (out, err)
    assert "sender: default (+48100200300)" in cli.ok("account", "show", "gamma")


def test_sender_none_is_refused_not_stored_as_a_name(cli: CLI) -> None:
    cli.ok("account", "add", "beta")
    code, _, err = cli("account", "set", "beta", "--sender", "none")
    assert code == 2 and "would be sent as a name" in err and "--sender default" in err, err
    assert "sender: default (+48100200300)" in cli.ok("account", "show", "beta")


def test_sender_help_names_default(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli.main import main

    with pytest.raises(SystemExit):
        main(["account", "set", "--help"])
    assert "'default' for [gateway]" in " ".join(capsys.readouterr().out.split())


def test_check_config_warns_of_a_sender_stored_as_the_word_default(cli: CLI) -> None:
    """An account set to the name "default" before the word meant the default: every SMS of it goes
    out from that name."""
    import sqlite3
    from contextlib import closing

    cli.ok("account", "add", "beta")
    with closing(sqlite3.connect(cli.path.parent / "state" / "smsgw.db")) as conn, conn:
        conn.execute("UPDATE accounts SET sender = 'default' WHERE name = 'beta'")
    code, _, err = cli("check-config")
    assert code == 0 and "beta" in err and "would be sent as a name" in err, err


# ---- premium addresses on the gateway's own domain ----------------------------------------------


@pytest.fixture
def premium(cli: CLI) -> CLI:
    cli.path.write_text(cli.path.read_text() + '\n[premium]\nnumbers = ["7355"]\n')
    cli.ok("account", "add", "beta")
    return cli


@pytest.mark.parametrize(
    "options",
    [
        ["--email", "client@sms.example.com"],
        ["--email", "601123456@SMS.Example.com"],
        ["--email", "k@example.org", "--reply-acl", "x@sms.example.com"],
    ],
)
def test_premium_add_refuses_a_client_address_on_a_gateway_domain(premium: CLI, options: list[str]) -> None:
    """The confirmation, and every SMS after it, would come back to the gateway and be refused:
    the service never confirms and the public's paid SMS are kept for good."""
    code, _, err = premium("premium", "add", "KP123", "--account", "beta", *options)
    assert code == 2 and "would loop" in err and "sms.example.com is one of [gateway] domains" in err, err
    assert premium.ok("premium", "list") == ["no premium services"]


@pytest.mark.parametrize("option", ["--email", "--reply-acl"])
def test_premium_set_refuses_a_client_address_on_a_gateway_domain(premium: CLI, option: str) -> None:
    premium.ok("premium", "add", "KP123", "--account", "beta", "--email", "k@example.org")
    code, _, err = premium("premium", "set", "KP123", option, "b@SMS.example.com")
    assert code == 2 and f"{option} 'b@SMS.example.com' would loop" in err, err
    (listed,) = premium.ok("premium", "list")
    assert "→ k@example.org" in listed and "reply ACL k@example.org " in listed, listed


def test_check_config_warns_of_a_premium_service_stored_on_a_gateway_domain(premium: CLI) -> None:
    import sqlite3
    from contextlib import closing

    premium.ok("premium", "add", "KP123", "--account", "beta", "--email", "k@example.org")
    with closing(sqlite3.connect(premium.path.parent / "state" / "smsgw.db")) as conn, conn:
        conn.execute("UPDATE premium_services SET email = 'k@sms.example.com'")
        conn.execute("UPDATE premium_reply_acl SET address = 'x@sms.example.com'")
    code, _, err = premium("check-config")
    assert code == 0, err
    for option, address in (("--email", "k@sms.example.com"), ("--reply-acl", "x@sms.example.com")):
        assert f'premium service KP123: {option} "{address}" would loop' in err, err
        assert f"`smsgw premium set KP123 {option} …`" in err, err


# ---- root in the service's state directory -------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("openssl"), reason="needs root and openssl")
def test_tls_selfsigned_as_root_refuses_a_state_dir_of_the_service_user(cli: CLI) -> None:
    """`sudo smsgw tls selfsigned --force` made a key only root could read: the service's next start
    exited 3, which systemd does not restart."""
    state = cli.path.parent / "state"
    cli.ok("tls", "selfsigned")  # root's own directory: allowed
    nobody = pwd.getpwnam("nobody")
    for p in [state, *state.iterdir()]:
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    code, _, err = cli("tls", "selfsigned", "--force")
    assert code == 2 and "belongs to user nobody" in err and "sudo -u nobody" in err, err
    assert {p.stat().st_uid for p in state.iterdir()} == {nobody.pw_uid}


# ---- the demo number as the production sender ------------------------------------------------------


def _installed(tmp_path: Path, *options: str) -> tuple[str, str]:
    """install-service's config and what check-config says of it (state dir moved where we may write)."""
    root = tmp_path / "root"
    res = run("install-service", "--root", str(root), "--exec", f"{sys.executable} -m gateway.cli", *options)
    assert res.returncode == 0, res.stderr
    config = root / "etc/smsgw/config.toml"
    text = config.read_text().replace("/var/lib/smsgw", str(tmp_path / "state"))
    config.write_text(text)
    (root / "etc/smsgw/smsc-password").write_text("x\n")
    checked = run("--config", str(config), "check-config")
    assert checked.returncode == 0, checked.stderr
    return res.stdout + text, checked.stderr


def test_the_installed_config_names_the_demo_sender_to_replace(tmp_path: Path) -> None:
    """Every account made without --sender sent from the walkthrough's number, which the company
    does not own; check-config only noted that libphonenumber did not know it."""
    said, warned = _installed(tmp_path)
    assert 'default_sender = "+48100200300"  # made up: set the number your operator gave you' in said
    assert "edit /etc/smsgw/config.toml ([[smsc]], domains, default_sender," in said
    assert 'warning: [gateway] default_sender: "+48100200300" is the walkthrough\'s made-up' in warned, warned


def test_install_service_writes_the_sender_it_is_given(tmp_path: Path) -> None:
    said, warned = _installed(tmp_path, "--sender", "+48500100200")
    assert 'default_sender = "+48500100200"\n' in said and "default_sender," not in said
    assert "default_sender" not in warned, warned
    res = run("install-service", "--root", str(tmp_path / "r2"), "--sender", "+48 500 100 200")
    assert res.returncode == 2 and "--sender: sender '+48 500 100 200' looks like a number" in res.stderr
    res = run("install-service", "--root", str(tmp_path / "r3"), "--sender", "default")
    # account set's `default` means the config's; install-service writes that config: no such thing
    assert res.returncode == 2 and "--sender: give the number your operator gave you" in res.stderr


@pytest.mark.parametrize(
    ("host", "simulator", "warned"),
    [("192.0.2.10", "false", True), ("smsc.operator.example", "false", True), ("192.0.2.10", "true", True),
     ("127.0.0.1", "false", True), ("localhost", "false", True)],
)  # fmt: skip
def test_the_demo_sender_is_warned_of_only_with_an_operators_link(
    tmp_path: Path, host: str, simulator: str, warned: bool
) -> None:
    """A link is the simulator's only where it points at the enabled simulator's port: one on loopback
    otherwise is an operator's through a tunnel (stunnel, ssh), which refuses the made-up sender."""
    from tests.test_first_day_cli import write_config

    config = write_config(tmp_path)  # default_sender unset: the demo number
    text = config.read_text().replace('name = "main"', f'name = "main"\nhost = "{host}"')
    config.write_text(text.replace("[simulator]\nenabled = false", f"[simulator]\nenabled = {simulator}"))
    res = run("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    assert ("is the walkthrough's made-up" in res.stderr) == warned, res.stderr


# ---- a mistyped state_dir -------------------------------------------------------------------------


def test_account_add_does_not_create_a_database_in_a_mistyped_state_dir(tmp_path: Path) -> None:
    """It made the directory, the database and its marker there, and every later command worked
    against that database, which the daemon never read: an opt-out the admin believed in place."""
    from tests.test_first_day_cli import write_config

    config = write_config(tmp_path)  # state_dir = tmp_path/"state", which does not exist: a typo
    db = tmp_path / "state" / "smsgw.db"
    res = run("--config", str(config), "account", "add", "NEWCO")
    assert res.returncode == 1 and f"no database at {db} (is state_dir right?)" in res.stderr, res.stderr
    assert not (tmp_path / "state").exists()
    (tmp_path / "state").mkdir()  # as install-service or the daemon's first start makes it
    res = run("--config", str(config), "account", "add", "NEWCO")
    assert res.returncode == 0, res.stderr
    assert f"created a new, empty database at {db}" in res.stderr and db.exists()
    res = run("--config", str(config), "account", "add", "OTHER")
    assert res.returncode == 0 and "created" not in res.stderr, res.stderr


# ---- small answers that misled ----------------------------------------------------------------------


def test_user_add_of_a_user_of_another_account_names_it_and_the_move(cli: CLI) -> None:
    """It said only "exists already": neither where, nor that a user moves by remove and add."""
    cli.ok("account", "add", "ACME")
    cli.ok("account", "add", "Beta")
    cli.ok("user", "add", "anna@acme.example", "--account", "ACME")
    code, _, err = cli("user", "add", "anna@acme.example", "--account", "Beta")
    assert code == 1, err
    assert (
        "user 'anna@acme.example' exists already, in account ACME; to move it: smsgw user remove"
        " anna@acme.example && smsgw user add anna@acme.example --account Beta" in err
    ), err
    code, _, err = cli("user", "add", "anna@acme.example", "--account", "ACME")
    assert code == 1 and "exists already, in that account" in err and "move" not in err, err


def test_user_list_of_a_mistyped_account_says_so(cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    cli.ok("user", "add", "anna@acme.example", "--account", "ACME")
    code, out, err = cli("user", "list", "--account", "ACEM")
    assert code == 1 and "no account named 'ACEM'" in err and out == [], (out, err)
    assert len(cli.ok("user", "list", "--account", "ACME")) == 1


def test_auth_unlock_of_what_was_not_locked_says_so(cli: CLI) -> None:
    """It answered "unlocked 1.2.3.4: the running daemon lifts the lock" with nothing locked."""
    from gateway.housekeeping import write_status

    cli.ok("account", "add", "ACME")
    lock = {"kind": "pair", "address": "192.0.2.7", "login": "anna@acme.example", "seconds_left": 300}
    write_status(cli.path.parent / "state" / "status.json", {"auth_locks": [{**lock, "strikes": 1}]})
    out = cli.ok("auth", "unlock", "1.2.3.4", "Anna@acme.example")
    assert out == [
        "unlocked anna@acme.example: the running daemon lifts the lock at the next login attempt"
        " (no restart)",
        "1.2.3.4 was not locked when the daemon last wrote its status; a lock made since is lifted too",
    ], out
    assert cli.ok("auth", "unlock", "192.0.2.7")[0].startswith("unlocked 192.0.2.7:")
    write_status(cli.path.parent / "state" / "status.json", {"auth_locks": []})
    assert cli.ok("auth", "unlock")[0].startswith("no login or address was locked")


def test_status_without_a_database_is_not_running(tmp_path: Path) -> None:
    """Exit 1 is "running with trouble": with no database nothing ever ran on this state_dir."""
    from tests.test_first_day_cli import write_config

    res = run("--config", str(write_config(tmp_path)), "status")
    assert res.returncode == 3 and "is state_dir right?" in res.stderr, res.stderr


# ---- [[account]] edits after the first start ----------------------------------------------------------


def test_check_config_warns_of_account_edits_it_will_not_apply(cli: CLI) -> None:
    """An [[account]] block only creates a missing account: a user or network added to it later was
    ignored without a word, and the user's mail refused with 550."""
    from gateway.adminrules import seed_accounts
    from gateway.cli.common import open_store
    from gateway.config import load_config

    base = cli.path.read_text()
    store = open_store(load_config(cli.path))
    seed_accounts(store, load_config(cli.path))  # what the daemon's first start does
    store.close()
    cli.ok("account", "add", "other")
    cli.ok("user", "add", "ola@other.example", "--account", "other")
    assert cli("check-config")[0] == 0 and '[[account]] "acme" names' not in cli("check-config")[2]
    edited = base.replace(
        'users = ["anna@acme.example"]',
        'users = ["anna@acme.example", "bob@acme.example", "Ola@other.example"]',
    ).replace('["127.0.0.0/8"]', '["127.0.0.0/8", "10.9.0.1/16"]')
    cli.path.write_text(edited)
    code, _, err = cli("check-config")
    assert code == 0, err
    assert '[[account]] "acme" names user bob@acme.example, but the account does not have it' in err, err
    assert "`smsgw user add bob@acme.example --account 'acme'`" in err
    assert "user Ola@other.example, but it is account other's" in err
    assert "`smsgw user remove Ola@other.example` and `smsgw user add" in err
    assert "`smsgw account set 'acme' --add-network 10.9.0.1/16`" in err
    # Only what changed is named (the walkthrough's own warning of 127.0.0.0/8 aside: a link here
    # on loopback with the simulator off is taken for an operator's).
    edits = "\n".join(x for x in err.splitlines() if "[[account]]" in x and "relays from" not in x)
    assert "anna@acme.example" not in edits and "127.0.0.0/8" not in edits


def test_check_config_says_what_an_account_keeps_that_its_block_took_out(cli: CLI) -> None:
    """A network taken out of an [[account]] block (to lock a mail host out) went on relaying with
    250, and a sender changed there changed nothing, while check-config said "config OK"."""
    from gateway.adminrules import seed_accounts
    from gateway.cli.common import open_store
    from gateway.config import load_config

    base = cli.path.read_text()
    store = open_store(load_config(cli.path))
    seed_accounts(store, load_config(cli.path))  # what the daemon's first start does
    store.close()
    edited = base.replace('relay_networks = ["127.0.0.0/8"]', "relay_networks = []")
    edited = edited.replace('sender = "+48100200300"', 'sender = "+48500100200"', 1)
    cli.path.write_text(edited)
    code, _, err = cli("check-config")
    assert code == 0, err
    assert '[[account]] "acme" does not name network 127.0.0.0/8, which the account still trusts' in err, err
    assert "`smsgw account set 'acme' --remove-network 127.0.0.0/8` stops it" in err, err
    assert '[[account]] "acme" names sender +48500100200, but the account sends from +48100200300' in err, err
    assert "`smsgw account set 'acme' --sender +48500100200`" in err, err
    cli.ok("account", "set", "acme", "--remove-network", "127.0.0.0/8")
    cli.ok("account", "set", "acme", "--sender", "+48500100200")
    code, _, err = cli("check-config")
    assert code == 0 and '[[account]] "acme"' not in err, err


def test_a_user_under_two_account_blocks_is_refused(cli: CLI) -> None:
    """The second block's user was dropped silently at the first start."""
    cli.path.write_text(
        cli.path.read_text() + '\n[[account]]\nname = "beta"\nusers = ["Anna@acme.example"]\n'
    )
    code, _, err = cli("check-config")
    assert (
        code == 3
        and '[[account]] "beta" users: Anna@acme.example is named by [[account]] "acme" too: a user belongs'
        " to one account, keep one"
        in err
    ), err


def test_the_installed_config_mails_the_answers_no_user_gets_to_the_administrator(tmp_path: Path) -> None:
    """Without `[replies] fallback_address` a phone's answer to a user who had left was recorded as
    unmatched and mailed to nobody; the config install-service writes sends it to the admin."""
    said, _warned = _installed(tmp_path, "--domain", "sms.acme.example")
    assert "[replies]\n" in said and 'fallback_address = "postmaster@acme.example"' in said
    assert "the answers no user gets go there" in said
    config = tmp_path / "root/etc/smsgw/config.toml"
    assert load_config(config).replies.fallback_address == "postmaster@acme.example"
