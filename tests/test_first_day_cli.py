"""The administrator's first day, as commands in a subprocess: installing, finding the config, mistakes.
Ports, and what a new admin met walking through the README, have modules of their own
(test_first_day_cli_ports.py, test_first_day_cli_readme.py); `run` and `write_config` stay here."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import common
from gateway.cli.main import build_parser
from gateway.cli.servicefiles import CREDENTIALS_DROPIN, LOW_PORT_DROPIN, render_unit
from gateway.store.db import Store
from tests.conftest import config_text, free_port

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("SMSGW_CONFIG", None) if env is None or "SMSGW_CONFIG" not in env else None
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=60)


def write_config(tmp_path: Path, **kw: object) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port(), **kw))  # type: ignore[arg-type]
    path.chmod(0o640)
    return path


# ---- install as a service ---------------------------------------------------------------------


def test_install_service_writes_a_layout_that_systemd_accepts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    exec_cmd = f"{sys.executable} -m gateway.cli"
    res = run("install-service", "--root", str(root), "--exec", exec_cmd, "--domain", "sms.acme.example")
    assert res.returncode == 0, res.stderr
    # The next steps name the command as systemd runs it (sudo's PATH has no venv) and the password.
    assert f"sudo -u smsgw {exec_cmd} --config /etc/smsgw/config.toml check-config" in res.stdout
    assert "/etc/smsgw/private/smsc-password" in res.stdout
    unit = root / "etc/systemd/system/smsgw.service"
    text = unit.read_text()
    assert f"ExecStart={exec_cmd} --config /etc/smsgw/config.toml run --json-logs" in text
    assert f"RestartPreventExitStatus={common.EXIT_CONFIG}" in text
    # journald's default rate limit would drop most of the log lines at a few hundred mails/s.
    assert "LogRateLimitBurst=200000" in text and "LogRateLimitIntervalSec=30s" in text
    # Ports 25 and 587 by default: the capability drop-in comes with them.
    assert (root / "etc/systemd/system/smsgw.service.d/low-port.conf").read_text() == LOW_PORT_DROPIN
    config = root / "etc/smsgw/config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # group-readable for the service user
    assert stat.S_IMODE((root / "var/lib/smsgw").stat().st_mode) == 0o750
    assert "enabled = false" in config.read_text()
    assert 'state_dir = "/var/lib/smsgw"' in config.read_text()
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    # The config written parses and passes check-config (the state dir moved to where we may write).
    checked = config.read_text().replace("/var/lib/smsgw", str(tmp_path / "state"))
    config.write_text(checked)
    res = run("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr


def test_install_service_keeps_an_existing_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert run("install-service", "--root", str(root), "--listen", "127.0.0.1:2525").returncode == 0
    config = root / "etc/smsgw/config.toml"
    config.write_text("# edited\n")
    res = run("install-service", "--root", str(root), "--listen", "127.0.0.1:2525",
              "--submission", "127.0.0.1:2587")  # fmt: skip
    assert res.returncode == 0 and "kept" in res.stdout
    assert config.read_text() == "# edited\n"
    # The drop-in follows the kept config, not the flags: one it cannot read leaves it as it was.
    assert (root / "etc/systemd/system/smsgw.service.d/low-port.conf").read_text() == LOW_PORT_DROPIN


def test_install_service_never_points_the_relay_at_the_gateway(tmp_path: Path) -> None:
    # It wrote relay 127.0.0.1:25 beside listen 0.0.0.0:25: every bounce went back into the gateway.
    def relay_written(*args: str) -> str:
        root = tmp_path / "root"
        res = run("install-service", "--root", str(root), "--hostname", "gw.example", "--force", *args)
        assert res.returncode == 0, res.stderr
        return next(
            line for line in (root / "etc/smsgw/config.toml").read_text().splitlines() if "relay" in line
        )

    assert relay_written().startswith('relay = "maildir:/var/lib/smsgw/mail"  # the gateway takes port 25')
    local = ("--listen", "127.0.0.1:2525", "--submission", "127.0.0.1:2587")
    assert relay_written(*local) == 'relay = "127.0.0.1:25"'
    assert relay_written("--relay", "mail.acme.example:25") == 'relay = "mail.acme.example:25"'
    root = tmp_path / "refused"
    res = run("install-service", "--root", str(root), "--hostname", "gw.example", "--relay", "localhost:25")
    assert res.returncode == common.EXIT_USAGE and "Traceback" not in res.stderr
    assert "--relay localhost:25: that is the gateway's own --listen 0.0.0.0:25" in res.stderr
    assert not (root / "etc/smsgw/config.toml").exists()


def test_shipped_unit_and_dropins_are_what_install_service_writes() -> None:
    assert (ROOT / "systemd/smsgw.service").read_text() == render_unit()
    assert (ROOT / "systemd/smsgw-low-port.conf").read_text() == LOW_PORT_DROPIN
    assert (ROOT / "systemd/smsgw-credentials.conf").read_text() == CREDENTIALS_DROPIN


def test_a_config_error_exits_with_the_status_the_unit_does_not_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path, timezone="Europe/Warsow")
    res = run("--config", str(config), "run")
    assert res.returncode == common.EXIT_CONFIG
    assert "[gateway] timezone: " in res.stderr and "Europe/Warsaw" in res.stderr


# ---- finding the config -----------------------------------------------------------------------


def test_config_from_the_environment_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = run("check-config", cwd=elsewhere, env={"SMSGW_CONFIG": str(config), "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert f"using config {config} (from $SMSGW_CONFIG)" in res.stderr


def test_no_config_anywhere_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common, "SYSTEM_CONFIG", tmp_path / "etc/config.toml")
    with pytest.raises(common.CliError) as err:
        common.find_config(None, env={})
    assert "SMSGW_CONFIG" in str(err.value) and err.value.code == common.EXIT_USAGE
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/config.toml").write_text("")
    assert common.find_config(None, env={}) == (tmp_path / "etc/config.toml", "no ./config.toml here")
    (tmp_path / "config.toml").write_text("")
    assert common.find_config(None, env={})[0] == Path("config.toml")
    assert common.find_config(Path("x.toml"), env={"SMSGW_CONFIG": "y"}) == (Path("x.toml"), None)


# ---- read-only commands never create a database -----------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["queue", "list"],
        ["outbox", "list"],
        ["account", "list"],
        ["mo", "list"],
        ["conversation", "list"],
        ["premium", "list"],
        ["premium", "verify", "KP123"],
        ["premium", "stats", "--month", "2026-01"],
        ["billing", "run", "--month", "2026-01"],
    ],
)
def test_a_mistyped_state_dir_is_reported_not_created(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path)
    res = run("--config", str(config), *command)
    db = tmp_path / "state" / "smsgw.db"
    assert res.returncode == (3 if command == ["status"] else 1)  # status: 3 is "not running"
    assert f"no database at {db} (is state_dir right?)" in res.stderr
    assert not db.exists() and not (tmp_path / "state").exists()


# ---- check-config catches what it used to accept -----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "key", "example"),
    [
        ({"timezone": "Europe/Warsow"}, "[gateway] timezone: ", "Europe/Warsaw"),
        ({"charset_fallbacks": ["utf-8", "win-1250"]}, "[gateway] charset_fallbacks: ", "windows-1250"),
    ],
)
def test_check_config_names_the_key_and_an_example(
    tmp_path: Path, extra: dict[str, object], key: str, example: str
) -> None:
    res = run("--config", str(write_config(tmp_path, **extra)), "check-config")
    assert res.returncode == common.EXIT_CONFIG
    assert key in res.stderr and example in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1", "local host:25", "::1:25", "127.0.0.1:70000"])
def test_check_config_refuses_a_bad_listener_address(tmp_path: Path, listen: str) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "{listen}"'))
    res = run("--config", str(config), "check-config")
    assert res.returncode == common.EXIT_CONFIG
    assert "[smtp] submission_listen: " in res.stderr and '"127.0.0.1:2525"' in res.stderr


def test_check_config_refuses_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "state").write_text("oops")
    res = run("--config", str(config), "check-config")
    assert res.returncode == common.EXIT_CONFIG
    assert "[gateway] state_dir: " in res.stderr and "is a file" in res.stderr
    res = run("--config", str(config), "run")
    assert res.returncode == common.EXIT_CONFIG and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--log-level", "LOUD"],
        ["queue", "list", "--state", "sent"],
        ["simulator", "run", "--log-level", "x"],
    ],
)
def test_unknown_choices_are_refused(tmp_path: Path, args: list[str]) -> None:
    res = run("--config", str(write_config(tmp_path)), *args)
    assert res.returncode == 2 and "invalid choice" in res.stderr


# ---- help and version -------------------------------------------------------------------------


def test_version() -> None:
    res = run("--version")
    assert res.returncode == 0 and res.stdout.startswith("smsgw ")


def test_every_subcommand_has_a_one_line_description() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for name, child in action.choices.items():
                    if not helps.get(name):
                        missing.append(f"{path} {name}".strip())
                    walk(child, f"{path} {name}")

    walk(build_parser(), "")
    assert missing == []


def test_outbox_list_and_retry(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    store = Store.open(tmp_path / "state" / "smsgw.db")
    mail_id = store.outbox.enqueue_mail("bounce", "smsgw@x", "anna@acme.example", b"x")
    store.outbox.claim_mail(10)
    store.outbox.finish_mail(mail_id, "failed", "550 5.1.1 no such user")
    store.close()
    res = run("--config", str(config), "outbox", "list")
    assert res.returncode == 0
    assert "bounce" in res.stdout and "anna@acme.example" in res.stdout and "550 5.1.1" in res.stdout
    assert run("--config", str(config), "outbox", "retry").returncode == 2  # ID or --all
    res = run("--config", str(config), "outbox", "retry", "--all")
    assert res.returncode == 0 and "1 mail(s)" in res.stdout
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as conn:
        assert conn.execute("SELECT state, attempts FROM outbox").fetchone() == ("queued", 0)


def test_a_user_who_sent_mail_is_removed_and_the_next_user_starts_from_zero(tmp_path: Path) -> None:
    # Defect: `user remove` failed (FOREIGN KEY constraint failed) for anyone who had ever sent mail,
    # so a departing employee kept sending; and the id SQLite hands out again carried their counters.
    config = write_config(tmp_path)
    db = tmp_path / "state" / "smsgw.db"
    store = Store.open(db)
    acme = store.accounts.add_account("acme").id
    bob = store.accounts.add_user("bob@acme.example", "acme").id
    with store.db.transaction():
        store.db.conn.execute(
            "INSERT INTO emails (account_id, user_id, mail_from, text, received_at) VALUES (?, ?, ?, 'x', 0)",
            (acme, bob, "bob@acme.example"),
        )
    store.accounts.add_usage([f"account:{acme}", f"user:{bob}"], ["2026-03", "2026-03-02"], 7)
    assert store.policy.first_limit_notice(f"user:{bob}", "2026-03")
    store.close()
    res = run("--config", str(config), "user", "remove", "BOB@acme.example")
    assert res.returncode == 0, res.stderr
    assert "user BOB@acme.example removed" in res.stdout
    assert (
        run("--config", str(config), "user", "add", "carl@acme.example", "--account", "acme").returncode == 0
    )
    store = Store.open(db)
    try:
        assert store.accounts.find_user("bob@acme.example") is None
        # The audit record of the mail stays, with its sender, no longer linked to a user.
        row = store.db.conn.execute("SELECT user_id, mail_from FROM emails").fetchone()
        assert row == (None, "bob@acme.example")
        carl = store.accounts.find_user("carl@acme.example")
        assert carl is not None and carl.id == bob  # SQLite gave bob's id to the next user ...
        assert store.accounts.usage(f"user:{carl.id}", "2026-03") == 0  # ... but not his counters
        assert store.policy.first_limit_notice(f"user:{carl.id}", "2026-03")  # nor his notices
        assert store.accounts.usage(f"account:{acme}", "2026-03") == 7  # the account's stay
    finally:
        store.close()
