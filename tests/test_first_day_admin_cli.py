"""An administrator's first day at the CLI, the second pass: lists that are a moment old and say so,
accounts that differ only in case, a password file that outlives its password, times without a zone,
log lines on the terminal. Every command runs through the real CLI entry point on a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.housekeeping import write_status
from tests.conftest import config_text
from tests.test_account_show import CLI

# ---- auth list: how old its answer is, and a lift already asked for ----------------------------------


def test_auth_list_says_when_the_daemon_wrote_the_locks(cli: CLI) -> None:
    """Right after the third failure it said "no logins locked": the daemon had not written yet."""
    cli.ok("account", "add", "ACME")
    state = cli.path.parent / "state" / "status.json"
    write_status(state, {"auth_locks": []})
    [line] = cli.ok("auth", "list")
    assert line.startswith("no logins locked as of ") and "every 2 s" in line, line
    shown = line.removeprefix("no logins locked as of ")[:8]
    assert time.strptime(shown, "%H:%M:%S"), shown


def test_auth_list_marks_a_lock_whose_unlock_is_requested(cli: CLI) -> None:
    """After `auth unlock X` it still said "locked 5 min more": the daemon lifts it at the next try."""
    cli.ok("account", "add", "ACME")
    state = cli.path.parent / "state" / "status.json"
    lock = {"kind": "pair", "address": "192.0.2.7", "login": "anna@acme.example", "seconds_left": 300}
    other = {**lock, "address": "192.0.2.8", "login": "ben@acme.example"}
    locks = [{**lock, "strikes": 1, "locked_at": time.time() - 5}, {**other, "strikes": 1, "locked_at": 0}]
    write_status(state, {"auth_locks": locks})
    before = cli.ok("auth", "list")
    assert before[0].startswith("logins locked as of "), before
    assert not any("unlock requested" in line for line in before), before
    cli.ok("auth", "unlock", "anna@acme.example")
    after = cli.ok("auth", "list")
    [anna] = [line for line in after if "anna@acme.example" in line]
    [ben] = [line for line in after if "ben@acme.example" in line]
    assert anna.endswith("(unlock requested: lifted at the next login attempt)"), anna
    assert "unlock requested" not in ben
    # A lock made after the request is not lifted by it (acl.counters), and not marked.
    write_status(state, {"auth_locks": [{**lock, "strikes": 2, "locked_at": time.time() + 60}]})
    assert not any("unlock requested" in line for line in cli.ok("auth", "list"))


# ---- accounts: a name differing in case only, and taking back an account added by mistake ----------


def test_an_account_differing_in_case_only_is_warned_of_and_can_be_removed(cli: CLI) -> None:
    cli.ok("account", "add", "GLOBEX")
    cli.ok("user", "add", "anna@globex.example", "--account", "GLOBEX")
    code, out, err = cli("account", "add", "globex")
    assert code == 0 and out[0].startswith("account globex added"), (out, err)
    assert "warning: account 'GLOBEX' exists, its name differing in case only" in err, err
    assert "smsgw account remove globex" in err
    code, _, err = cli("account", "add", "Beta")
    assert code == 0 and "warning" not in err, err
    assert cli.ok("account", "remove", "globex") == ["account globex removed"]
    assert not any(line.split()[0] == "globex" for line in cli.ok("account", "list")[1:])
    code, _, err = cli("account", "remove", "globex")
    assert code == 1 and "no account named 'globex'" in err, err


def test_an_account_in_use_is_not_removed_and_says_why(cli: CLI) -> None:
    cli.ok("account", "add", "ACME")
    cli.ok("user", "add", "anna@acme.example", "--account", "ACME")
    code, _, err = cli("account", "remove", "ACME")
    assert code == 1, err
    assert "account 'ACME' is not removed: it has users (remove them first" in err, err
    assert "suspend it instead: smsgw account suspend ACME" in err
    cli.ok("user", "remove", "anna@acme.example")
    assert cli.ok("account", "remove", "ACME") == ["account ACME removed"]


def test_removing_an_account_the_config_seeds_says_it_comes_back(cli: CLI) -> None:
    cli.ok("account", "add", "acme")  # the [[account]] block of the test config is named "acme"
    out = cli.ok("account", "remove", "acme")
    assert out[0] == "account acme removed" and "adds it again at the daemon's next start" in out[1], out


def test_an_account_with_history_is_not_removed(cli: CLI) -> None:
    import sqlite3

    cli.ok("account", "add", "GLOBEX")
    with sqlite3.connect(cli.path.parent / "state" / "smsgw.db") as conn:
        conn.execute(
            "INSERT INTO audit (at, actor, account_id, action, detail)"
            " SELECT 0, 'x@globex.example', id, 'settings', '' FROM accounts WHERE name = 'GLOBEX'"
        )
    code, _, err = cli("account", "remove", "GLOBEX")
    assert code == 1 and "it has panel actions in its audit trail" in err, err


# ---- times in the gateway's zone, and no INFO log lines among a command's output -----------------------


def test_lists_of_times_name_their_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.store.db import Store
    from tests.web_helpers import add_mail

    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775, timezone="Pacific/Auckland"))
    (tmp_path / "state").mkdir()
    cli = CLI(path, capsys)
    cli.ok("account", "add", "ACME")
    code, out, err = cli("queue", "list")
    assert out == ["no messages"] and "times in" not in err, (out, err)
    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        add_mail(store, "ACME", "anna@acme.example", "+48601123456", "Hi")
    finally:
        store.close()
    code, out, err = cli("queue", "list")
    assert code == 0 and len(out) == 1, out  # a script reading the lines gets the rows alone
    assert "smsgw: times in Pacific/Auckland ([gateway] timezone)" in err, err


def test_a_command_keeps_info_log_lines_off_the_terminal(tmp_path: Path, cli: CLI) -> None:
    code, out, err = cli("account", "add", "ACME")  # a new database: store.created, logged at INFO
    assert code == 0 and out == ["account ACME added (networks: none)"], (out, err)
    assert "store.created" not in err, err
    other = tmp_path / "other"
    path = other / "config.toml"
    other.mkdir()
    path.write_text(config_text(other, smsc_port=2775))
    (other / "state").mkdir()
    code, out, err = CLI(path, cli.capsys)("--log-level", "info", "account", "add", "ACME")
    assert code == 0 and out == ["account ACME added (networks: none)"], (out, err)
    assert "store.created" in err, err  # asked for: on stderr, never among the output


# ---- backups: a directory the service's user can write -------------------------------------------------


def test_a_missing_backup_directory_is_made_for_the_service_user(tmp_path: Path, cli: CLI) -> None:
    """`mkdir -m 700 DIR`, typed as root, made a directory the nightly backup (as smsgw) could not write."""
    import grp
    import pwd

    cli.ok("account", "add", "ACME")
    st = (tmp_path / "state").stat()
    owner, group = pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
    for target in (f"{tmp_path / 'nightly'}/", str(tmp_path / "nightly" / "one.db")):
        code, _, err = cli("backup", target)
        assert code == 2, err
        expected = f"create it first: sudo install -d -o {owner} -g {group} -m 700 {tmp_path / 'nightly'}"
        assert expected in err, err


# ---- small words ------------------------------------------------------------------------------------


def test_a_quoted_smsc_port_is_refused(tmp_path: Path) -> None:
    from gateway.config import ConfigError, parse_config

    text = config_text(tmp_path, smsc_port=2775)
    assert parse_config(text, source="t").smsc[0].port == 2775
    said = r'port: give a whole number without quotes \(port = 2775\), not the text "2775"'
    with pytest.raises(ConfigError, match=said):
        parse_config(text.replace("port = 2775", 'port = "2775"'), source="t")


def test_user_set_help_says_a_limit_left_out_is_kept(cli: CLI) -> None:
    with pytest.raises(SystemExit):
        cli("user", "set", "--help")
    text = " ".join(cli.capsys.readouterr().out.split())
    assert "(default none)" not in text and text.count("(left out: unchanged)") == 2, text


def test_account_list_and_show_say_transliterate_in_the_same_word(cli: CLI) -> None:
    cli.ok("account", "add", "GLOBEX")
    [line] = [line for line in cli.ok("account", "list") if line.startswith("GLOBEX:")]
    assert "transliterate off" in line, line
    assert any("transliterate: off" in line for line in cli.ok("account", "show", "GLOBEX"))
    cli.ok("account", "set", "GLOBEX", "--transliterate", "on")
    assert any("transliterate on" in line for line in cli.ok("account", "list"))


def test_the_unit_points_to_no_systemd_man_page_as_its_documentation() -> None:
    from gateway.cli.servicefiles import render_unit

    assert "Documentation=man:systemd" not in render_unit()


def test_send_among_several_users_names_them_and_the_option(cli: CLI) -> None:
    cli.ok("account", "add", "GLOBEX")
    for email in ("anna@globex.example", "ben@globex.example"):
        cli.ok("user", "add", email, "--account", "GLOBEX")
    code, _, err = cli("send", "+48601123456", "Hello")
    assert code == 2, err
    assert "2 users exist (anna@globex.example, ben@globex.example): say which one sends with --as" in err
    assert "e.g. smsgw send --as anna@globex.example NUMBER TEXT" in err
