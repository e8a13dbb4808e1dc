"""R-7.3: what `account set` and `user set` change, the CLI shows (`account show`, `user list`), and
`--notify-address none` clears the address as `none`/`default` clear the other options.

Every command runs through the real CLI entry point on a real SQLite file in tmp_path."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.cli.main import build_parser, main
from gateway.config import parse_config
from gateway.housekeeping import write_status
from gateway.statelock import LOCK_FILE
from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.test_cli_help import commands
from tests.test_status_lock import HOLDER
from tests.test_store import undo_migration_22

DEFAULTS = [
    "name: beta",
    "state: active",
    "sender: default (+48100200300)",
    "networks: none",
    "monthly-limit: none",
    "daily-limit: none",
    "split-mode: concatenated",
    "transliterate: off",
    "overflow: truncate",
    "validity-hours: default (24)",
    "end-marker: default (END)",
    "cut-from: none",
    "confirm: off",
    "dlr-mail: failed",
    "notify-address: none",
    "inbound-address: none",
    "auto-generated: record",
    "countries: any",
    "quiet-hours: none",
    "bulk: off",
    "reply-window-days: default (7)",
    "billing-to: none",
    "users: 0",
    "used: 0 parts this month, 0 today",
]


class CLI:
    """`smsgw -c CONFIG ...` in this process: (exit status, stdout lines, stderr)."""

    def __init__(self, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.path, self.capsys = path, capsys

    def __call__(self, *args: str) -> tuple[int, list[str], str]:
        self.capsys.readouterr()
        code = main(["-c", str(self.path), *args])
        out, err = self.capsys.readouterr()
        return code, out.splitlines(), err

    def ok(self, *args: str) -> list[str]:
        code, out, err = self(*args)
        assert code == 0, err
        return out

    def notify_address(self, name: str = "acme") -> str | None:
        cfg = parse_config(self.path.read_text(), source="test", base_dir=self.path.parent)
        store = Store.open(cfg.db_path)
        try:
            return store.accounts.get_account(name).notify_address
        finally:
            store.close()


def test_account_show_prints_every_setting_under_the_name_of_its_option(cli: CLI) -> None:
    # `account list` showed six of them; limits, quiet hours, notify address, billing addresses
    # and the users' limits were only to be read with sqlite.
    cli.ok("account", "add", "acme", "--relay-network", "192.0.2.0/24")
    cli.ok("user", "add", "anna@acme.example", "--account", "acme")
    cli.ok("user", "add", "boss@acme.example", "--account", "acme")
    cli.ok("user", "set", "anna@acme.example", "--monthly-limit", "300")
    cli.ok("user", "set", "boss@acme.example", "--daily-limit", "0", "--role", "admin")
    cli.ok(
        "account", "set", "acme", "--sender", "+48100200301", "--monthly-limit", "1000",
        "--daily-limit", "0", "--split-mode", "separate", "--transliterate", "on", "--overflow", "reject",
        "--validity-hours", "12.5", "--end-marker", "--", "--confirm", "on", "--dlr-mail", "all",
        "--notify-address", "ops@acme.pl", "--inbound-address", "recepcja@acme.pl",
        "--auto-generated", "send", "--quiet-hours", "22:00-07:00",
        "--bulk", "on", "--reply-window-days", "2.5", "--countries", "pl,cz", "--billing-to", "b@acme.pl",
        "--billing-to", "a@acme.pl",
    )  # fmt: skip
    assert cli.ok("account", "show", "acme") == [
        "name: acme",
        "state: active",
        "sender: +48100200301",
        "networks: 192.0.2.0/24",
        "monthly-limit: 1000",
        "daily-limit: 0",  # zero parts is a limit, not none
        "split-mode: separate",
        "transliterate: on",
        "overflow: reject",
        "validity-hours: 12.5",
        "end-marker: --",
        "cut-from: none",
        "confirm: on",
        "dlr-mail: all",
        "notify-address: ops@acme.pl",
        "inbound-address: recepcja@acme.pl",
        "auto-generated: send",
        "countries: PL, CZ",
        "quiet-hours: 22:00-07:00",
        "bulk: on",
        "reply-window-days: 2.5",
        "billing-to: a@acme.pl, b@acme.pl",
        "users: 2",
        "used: 0 parts this month, 0 today (daily limit 0: every mail refused)",
        "user: anna@acme.example  password not set  monthly-limit 300  daily-limit none"
        "  used 0 parts this month, 0 today",
        "user: boss@acme.example  password not set  role admin  monthly-limit none  daily-limit 0"
        "  used 0 parts this month, 0 today (daily limit 0: every mail refused)",
    ]
    # A fresh account says what applies where nothing was set.
    cli.ok("account", "add", "beta")
    assert cli.ok("account", "show", "beta") == DEFAULTS
    # What show prints as unset is what `account set` takes to unset it.
    cli.ok(
        "account", "set", "acme", "--sender", "", "--monthly-limit", "none", "--daily-limit", "none",
        "--split-mode", "concatenated", "--transliterate", "off", "--overflow", "truncate",
        "--validity-hours", "default", "--end-marker", "default", "--confirm", "off", "--dlr-mail", "failed",
        "--notify-address", "none", "--auto-generated", "record", "--quiet-hours", "none", "--bulk", "off",
        "--inbound-address", "none",
        "--reply-window-days", "default", "--countries", "any", "--billing-to", "none",
        "--remove-network", "192.0.2.0/24",
    )  # fmt: skip
    cli.ok("user", "remove", "anna@acme.example")
    cli.ok("user", "remove", "boss@acme.example")
    assert cli.ok("account", "show", "acme") == [line.replace("beta", "acme") for line in DEFAULTS]
    cli.ok("account", "suspend", "acme", "--reason", "too many failures")
    (state,) = [line for line in cli.ok("account", "show", "acme") if line.startswith("state:")]
    assert state.startswith("state: suspended since ") and state.endswith(" (too many failures)")


def test_every_option_of_account_set_is_shown(cli: CLI) -> None:
    # An option added to `account set` later must show up in `account show` too.
    parser = next(p for path, p, _ in commands(build_parser()) if path == ("account", "set"))
    options = {
        option.removeprefix("--")
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    cli.ok("account", "add", "beta")
    shown = {line.partition(":")[0] for line in cli.ok("account", "show", "beta")}
    # --config: the config file; --remove-cut-from and --no-cut-from change what cut-from shows; --shared
    # qualifies --add-network (networks shows the network)
    assert (
        options - {"add-network", "remove-network", "shared", "config", "remove-cut-from", "no-cut-from"}
        <= shown
    )
    assert "networks" in shown


def test_account_show_names_an_unknown_account(cli: CLI) -> None:
    cli.ok("account", "add", "acme")
    code, out, err = cli("account", "show", "ACME-typo")
    assert (code, out) == (1, [])
    assert err == "smsgw: no account named 'ACME-typo' (see `smsgw account list`)\n"


def test_account_help_names_the_show_verb(cli: CLI) -> None:
    parser = next(p for path, p, _ in commands(build_parser()) if path == ("account",))
    assert "show" in parser.format_help()
    assert "every setting" in parser.format_help()


def test_user_list_shows_each_users_limits(cli: CLI) -> None:
    cli.ok("account", "add", "acme")
    cli.ok("user", "add", "anna@acme.example", "--account", "acme")
    cli.ok("user", "add", "boss@acme.example", "--account", "acme")
    cli.ok("user", "set", "anna@acme.example", "--monthly-limit", "300", "--daily-limit", "20")
    cli.ok("user", "set", "boss@acme.example", "--role", "admin")
    assert cli.ok("user", "list", "--account", "acme") == [
        "anna@acme.example  account acme  password not set  monthly-limit 300  daily-limit 20"
        "  used 0 parts this month, 0 today",
        "boss@acme.example  account acme  password not set  role admin  monthly-limit none  daily-limit none"
        "  used 0 parts this month, 0 today",
    ]


def test_account_show_says_what_was_sent_against_a_limit_lowered_below_it(cli: CLI, tmp_path: Path) -> None:
    # A daily limit lowered below what the account had already sent today refuses every mail until
    # midnight; `account show` printed only the new limit, and the admin could not tell why staff's
    # mail bounced. The counters are the ones the gateway's acceptance writes (`usage`), read with the
    # same calendar periods in [gateway] timezone.
    from acl.limits import period_keys

    cli.ok("account", "add", "acme")
    cli.ok("user", "add", "anna@acme.example", "--account", "acme")
    cli.ok("user", "add", "olek@acme.example", "--account", "acme")
    cli.ok("account", "set", "acme", "--daily-limit", "5", "--monthly-limit", "100")
    cli.ok("user", "set", "anna@acme.example", "--monthly-limit", "12")
    cfg = parse_config(cli.path.read_text(), source="test", base_dir=cli.path.parent)
    for _ in range(2):  # again if the day turned between the write and the show
        keys = period_keys(datetime.now(ZoneInfo(cfg.gateway.timezone)))
        store = Store.open(cfg.db_path)
        try:
            acme = store.accounts.get_account("acme").id
            (anna,) = [u.id for u in store.accounts.list_users("acme") if u.email.startswith("anna")]
        finally:
            store.close()
        rows = [
            (f"account:{acme}", "2026-01", 50),  # another month and day
            (f"account:{acme}", "2026-01-31", 50),
            (f"account:{acme}", keys["monthly"], 12),
            (f"account:{acme}", keys["daily"], 7),
            (f"user:{anna}", keys["monthly"], 12),
            (f"user:{anna}", keys["daily"], 7),
        ]
        with closing(sqlite3.connect(cfg.db_path)) as db, db:
            db.execute("DELETE FROM usage")
            db.executemany("INSERT INTO usage (scope, period, parts) VALUES (?, ?, ?)", rows)
        shown = cli.ok("account", "show", "acme")
        if keys == period_keys(datetime.now(ZoneInfo(cfg.gateway.timezone))):
            break
    assert (
        "used: 12 parts this month, 7 today (the daily limit of 5 reached: mail refused until tomorrow)"
        in shown
    )
    assert (
        "user: anna@acme.example  password not set  monthly-limit 12  daily-limit none"
        "  used 12 parts this month, 7 today (the monthly limit of 12 reached: mail refused until next month)"
    ) in shown
    assert (
        "user: olek@acme.example  password not set  monthly-limit none  daily-limit none"
        "  used 0 parts this month, 0 today"
    ) in shown


@pytest.mark.parametrize("word", ["none", "default", "NONE", " Default "])
def test_notify_address_none_or_default_clears_it(cli: CLI, word: str) -> None:
    # The other options take none/default to go back; this one answered "'none' is not an email
    # address", and only an empty string cleared it.
    cli.ok("account", "add", "acme")
    cli.ok("account", "set", "acme", "--notify-address", "ops@acme.pl")
    assert cli.notify_address() == "ops@acme.pl"
    code, _, err = cli("account", "set", "acme", "--notify-address", word)
    assert code == 0, err
    assert cli.notify_address() is None
    assert "notify-address: none" in cli.ok("account", "show", "acme")


def test_notify_address_refusals_say_how_to_clear_it(cli: CLI) -> None:
    cli.ok("account", "add", "acme")
    cli.ok("account", "set", "acme", "--notify-address", "ops@acme.pl")
    code, _, err = cli("account", "set", "acme", "--notify-address", "nobody")
    assert code == 2 and "'nobody' is not an email address (or 'none': bounces to the sender)" in err
    assert cli.notify_address() == "ops@acme.pl"  # a refused value changes nothing
    code, _, err = cli("account", "set", "acme", "--notify-address", "")  # as before: cleared
    assert code == 0, err
    assert cli.notify_address() is None
    parser = next(p for path, p, _ in commands(build_parser()) if path == ("account", "set"))
    assert "'none' (or 'default') sends them to the sender" in " ".join(parser.format_help().split())


def test_accounts_users_and_queue_with_the_mistakes_an_admin_makes(cli: CLI) -> None:
    # Accounts and users are managed from the CLI, with clear errors for mistakes. In this process:
    # a subprocess each (about 1 s of imports) made this the slowest test of the suite; the exit
    # codes of a real process are the subject of test_cli_errors.py and test_first_day_cli.py.
    cli.ok("account", "add", "beta", "--relay-network", "10.1.0.0/16")
    code, _, err = cli("account", "add", "beta")
    assert code != 0 and "exists already" in err
    code, _, err = cli("account", "add", "gamma", "--relay-network", "10.1.0.0/33")
    assert code != 0 and "not a network" in err
    cli.ok("user", "add", "bob@beta.example", "--account", "beta")
    code, _, err = cli("user", "add", "eve@x.example", "--account", "nope")
    assert code != 0 and "no account named 'nope'" in err
    assert any("bob@beta.example" in line for line in cli.ok("user", "list"))
    cli.ok("user", "remove", "bob@beta.example")
    assert any("no users" in line for line in cli.ok("user", "list", "--account", "beta"))
    assert cli("queue", "retry", "42")[0] != 0
    code, out, _ = cli("status")
    assert code == 3 and any("not running" in line for line in out)  # LSB's "not running"
    # Account settings, suspension and opt-outs.
    cli.ok("account", "set", "beta", "--monthly-limit", "100", "--quiet-hours", "21:00-08:00")
    code, _, err = cli("account", "set", "beta", "--quiet-hours", "25:00-08:00")
    assert code != 0 and "25:00" in err
    assert cli("account", "set", "beta")[0] != 0  # nothing to change
    cli.ok("account", "suspend", "beta")
    assert any("SUSPENDED" in line for line in cli.ok("account", "list"))
    cli.ok("account", "resume", "beta")
    cli.ok("optout", "add", "601 123 456")
    assert any("+48601123456" in line for line in cli.ok("optout", "list"))
    assert cli("optout", "add", "12")[0] != 0
    cli.ok("optout", "remove", "+48601123456")
    assert any("no opt-outs" in line for line in cli.ok("optout", "list"))


def test_a_network_with_host_bits_is_stored_as_the_network_it_trusts(cli: CLI) -> None:
    # `10.0.0.1/8` was stored and shown as typed: the admin could not see that 10.0.0.0/8 may send.
    out = cli.ok("account", "add", "beta", "--relay-network", "10.0.0.1/8")
    assert (out[0], out[-1]) == ("10.0.0.1/8 read as 10.0.0.0/8", "account beta added (networks: 10.0.0.0/8)")
    cli.ok("account", "set", "beta", "--add-network", "192.0.2.7/24", "--remove-network", "10.0.0.1/8")
    assert "networks: 192.0.2.0/24" in cli.ok("account", "show", "beta")


def test_a_daily_limit_above_the_monthly_one_is_taken_and_noted(cli: CLI) -> None:
    # Monthly 10, daily 100: taken without a word, and the daily limit could never be reached.
    cli.ok("account", "add", "beta")
    cli.ok("user", "add", "bob@beta.example", "--account", "beta")
    note = "note: the daily limit (100) is above the monthly limit (10): only the monthly one can be reached"
    assert note in cli.ok("user", "set", "bob@beta.example", "--monthly-limit", "10", "--daily-limit", "100")
    assert note in cli.ok("account", "set", "beta", "--monthly-limit", "10", "--daily-limit", "100")
    assert not any("note:" in line for line in cli.ok("account", "set", "beta", "--daily-limit", "5"))


def test_remove_network_takes_a_row_stored_as_typed_by_the_network_it_stands_for(cli: CLI) -> None:
    # A row stored before networks were normalised ("10.20.0.1/16") stayed when the network it
    # trusts (10.20.0.0/16) was removed; removing one the account never had said only "updated".
    cli.ok("account", "add", "beta")
    store = Store.open(cli.path.parent / "state" / "smsgw.db")
    try:
        store.accounts.set_account_networks("beta", add=["10.20.0.1/16"])
    finally:
        store.close()
    out = cli.ok(
        "account", "set", "beta", "--remove-network", "10.20.0.0/16", "--remove-network", "192.0.2.0/24"
    )
    assert "note: 192.0.2.0/24 was not one of account beta's networks" in out
    assert "note: 10.20.0.0/16 was not one of account beta's networks" not in out
    assert "networks: none" in cli.ok("account", "show", "beta")


def test_a_command_of_a_newer_smsgw_leaves_the_database_of_a_running_older_daemon_alone(cli: CLI) -> None:
    # `smsgw status` of the new version upgraded the database under the running old daemon: its own
    # commands then refused the database, and its restart exited with status 3 (not restarted).
    cli.ok("account", "add", "beta")
    db = cli.path.parent / "state" / "smsgw.db"
    with closing(sqlite3.connect(db)) as conn:
        undo_migration_22(conn)
        conn.execute("UPDATE schema_version SET version = 21")
        conn.commit()
    # The old daemon: its lock on the state directory (a live pid in status.json alone is none).
    lock = str(cli.path.parent / "state" / LOCK_FILE)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, lock], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as old:
        assert old.stdin is not None and old.stdout is not None
        try:
            assert old.stdout.readline() == b"held\n"
            write_status(cli.path.parent / "state" / "status.json", {"pid": old.pid})
            code, _, err = cli("status")
            assert code == 1 and "restart it on this version first" in err, err
            with closing(sqlite3.connect(db)) as conn:
                assert conn.execute("SELECT version FROM schema_version").fetchone() == (21,)
        finally:
            old.stdin.close()
            old.wait(30)
    code, _, err = cli("status")
    assert code == 3 and "waits for its upgrade" in err, err  # no daemon: status reads, upgrades nothing
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (21,)
    code, _, err = cli("account", "list")
    assert code == 0  # no daemon: the command upgrades it, as before, and says so
    assert f"upgraded the database {db} from schema version 21 to {SCHEMA_VERSION}" in err, err
    assert "an earlier smsgw can no longer open it" in err
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert "upgraded the database" not in cli("status")[2]  # once: the next command finds it current
