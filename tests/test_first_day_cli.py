"""The administrator's first day, as commands in a subprocess: installing, finding the config, mistakes."""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import statelock
from gateway.cli import binderror, common
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


# ---- ports ------------------------------------------------------------------------------------


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, smtp_port=port)
        res = run("--config", str(config), "run")
    assert res.returncode == 1
    assert f'cannot listen on [smtp] listen = "127.0.0.1:{port}": the port is already in use' in res.stderr
    assert "a mail server" in res.stderr
    assert "Traceback" not in res.stderr and "CancelledError" not in res.stderr


def test_every_busy_port_is_named_in_one_start(tmp_path: Path) -> None:
    # The start stopped at the first busy port: with the shipped ports held by another smsgw an
    # admin learnt of the six busy ones in six starts. The free ones must not be named, nor the
    # daemon's own listeners bound before the failing one.
    with socket.socket() as smtp, socket.socket() as submission:
        for taken in (smtp, submission):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        port, sub_port = smtp.getsockname()[1], submission.getsockname()[1]
        config = write_config(tmp_path, smtp_port=port)
        text = config.read_text().replace(
            'submission_listen = "127.0.0.1:0"', f'submission_listen = "127.0.0.1:{sub_port}"'
        )
        config.write_text(text + f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{free_port()}"\n')
        res = run("--config", str(config), "run")
    assert res.returncode == 1, res.stderr
    line = " ".join(res.stderr.split())
    assert f'cannot listen on [smtp] listen = "127.0.0.1:{port}": the port is already in use' in line, line
    assert line.count("in use") == 2, line
    assert f'; also in use: [smtp] submission_listen = "127.0.0.1:{sub_port}"' in line, line
    assert "[web]" not in line, line


def test_a_busy_simulator_port_names_the_link_that_must_move_with_it(tmp_path: Path) -> None:
    # The README said to move a busy port in [simulator]; moving only smpp_port left the shipped
    # `[[smsc]] "simulator"` link connecting to the old port, to whatever held it. The message was
    # also written `simulator.smpp_port = "127.0.0.1:2775"` and asked about "a mail server".
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        text = config_text(tmp_path, smsc_port=port).replace(
            "[simulator]\nenabled = false\n",
            f"[simulator]\nenabled = true\nsmpp_port = {port}\ncimd2_port = 0\ncontrol_port = 0\n",
        )
        config.write_text(text.replace('name = "main"', 'name = "simulator"'))
        config.chmod(0o640)
        res = run("--config", str(config), "run")
    assert res.returncode == 1, res.stderr
    line = " ".join(res.stderr.split())
    assert f"cannot listen on [simulator] smpp_port = {port}: the port is already in use" in line, line
    assert f'[[smsc]] "simulator" connects to this port (port = {port})' in line, line
    assert "give it the port you choose for [simulator] smpp_port too" in line, line
    assert "mail server" not in line and "another SMSC" in line, line


@pytest.mark.parametrize("key", ["smpp_port", "control_port", "cimd2_port"])
def test_simulator_run_says_which_simulator_port_is_busy(tmp_path: Path, key: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path)
        ports = {"smpp_port": 0, "control_port": 0, "cimd2_port": 0, key: port}
        lines = "".join(f"{k} = {v}\n" for k, v in ports.items())
        config.write_text(config.read_text().replace("[simulator]\n", "[simulator]\n" + lines, 1))
        res = run("--config", str(config), "simulator", "run")
    assert res.returncode == 1, res.stderr
    assert f"[simulator] {key} = {port}:" in res.stderr and "already in use" in res.stderr
    assert "mail server" not in res.stderr and "[[smsc]]" not in res.stderr  # no link connects to it
    assert "Traceback" not in res.stderr


def test_low_ports_and_unwritable_databases_are_explained() -> None:
    # Root may bind any port and write any file, so these two are checked on the wording.
    denied = OSError(errno.EACCES, "Permission denied")
    assert "CAP_NET_BIND_SERVICE" in binderror.bind_error("smtp.listen", "0.0.0.0", 25, denied)
    text = common.database_error(
        Path("/x/smsgw.db"), sqlite3.OperationalError("attempt to write a readonly database")
    )
    # No sudo line where it cannot work (no such user here): the owner to fix, and as whom it runs.
    assert "fix the owner of the state directory" in text and "smsgw" in text, text


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


# ---- what a new admin met walking through the README --------------------------------------------


def test_times_are_shown_in_the_configured_zone_not_the_machines(tmp_path: Path) -> None:
    # The panel, the billing files and the mails say [gateway] timezone; a shell in UTC must not
    # make the CLI show the same event an hour off.
    config = write_config(tmp_path, timezone="Europe/Warsaw")
    at = datetime(2026, 11, 30, 19, 51, 2, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
    store = Store.open(tmp_path / "state" / "smsgw.db")
    store.policy.add_optout("+48601123456", word="STOP", source="sms")
    store.outbox.enqueue_mail("bounce", "smsgw@x", "anna@acme.example", b"x")
    store.close()
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as conn:
        email = conn.execute(
            "INSERT INTO emails (mail_from, text, received_at) VALUES ('anna@acme.example', 'x', ?)", (at,)
        ).lastrowid
        conn.execute(
            "INSERT INTO messages (email_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at) VALUES (?, '+48601123456', '+48100200300', 'x', 0, 1, 'queued', ?, ?)",
            (email, at, at + 86400),
        )
        conn.execute(
            "INSERT INTO mo (link, source, destination, text, state, received_at)"
            " VALUES ('main', '+48601123456', '+48100200300', 'hi', 'mailed', ?)",
            (at,),
        )
        conn.execute("UPDATE optouts SET created_at = ?", (at,))
        conn.execute("UPDATE outbox SET next_attempt_at = ?", (at,))
    for command in (["queue", "list"], ["outbox", "list"], ["optout", "list"], ["mo", "list"]):
        res = run("--config", str(config), *command, env={"TZ": "UTC"})
        assert res.returncode == 0, res.stderr
        assert "2026-11-30 19:51:02" in res.stdout, (command, res.stdout)


def test_mo_list_since_a_date_means_the_date_in_the_configured_zone(tmp_path: Path) -> None:
    # Auckland is 13 h ahead of a UTC shell: read there, "since 1 March" would skip its first 13 h.
    zone = ZoneInfo("Pacific/Auckland")
    config = write_config(tmp_path, timezone=zone.key)
    Store.open(tmp_path / "state" / "smsgw.db").close()
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as conn:
        for text, at in (
            ("late-february", datetime(2026, 2, 28, 23, 0, tzinfo=zone)),
            ("early-march", datetime(2026, 3, 1, 5, 0, tzinfo=zone)),
        ):
            conn.execute(
                "INSERT INTO mo (link, source, destination, text, state, received_at)"
                " VALUES ('main', '+48601123456', '+48100200300', ?, 'mailed', ?)",
                (text, at.timestamp()),
            )
    march, february = "2026-03-01 05:00:00", "2026-02-28 23:00:00"
    for since, listed in (("2026-03-01", [march]), ("2026-02-28 22:00", [march, february])):
        res = run("--config", str(config), "mo", "list", "--since", since, env={"TZ": "UTC"})
        assert res.returncode == 0, res.stderr
        assert [" ".join(line.split()[1:3]) for line in res.stdout.splitlines()] == listed, res.stdout


def test_a_second_run_names_the_running_daemon(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, smtp_port=port)
        (tmp_path / "state").mkdir()
        status = tmp_path / "state" / "status.json"
        # The running daemon's status file and lock; this test's process stands in for it (a live pid
        # in the status file alone is no daemon: a killed one's pid may be reused, test_status_lock).
        status.write_text(json.dumps({"pid": os.getpid(), "updated_at": time.time(), "links": {}}))
        with statelock.held(tmp_path / "state"):
            res = run("--config", str(config), "run")
        assert res.returncode == 1
        assert f"smsgw is already running (pid {os.getpid()})" in res.stderr
        assert "ss -ltnp" not in res.stderr and "Traceback" not in res.stderr
        # A status file left by a daemon that was killed: the port is busy for another reason.
        dead = subprocess.Popen(["true"])
        dead.wait()
        status.write_text(json.dumps({"pid": dead.pid, "updated_at": time.time(), "links": {}}))
        res = run("--config", str(config), "run")
    assert res.returncode == 1
    assert "already running" not in res.stderr and "the port is already in use" in res.stderr


def test_outbox_list_fits_its_widest_kind(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    store = Store.open(tmp_path / "state" / "smsgw.db")
    for kind in ("dsn", "premium-verify", "premium-fallback"):
        store.outbox.enqueue_mail(kind, "smsgw@x", "anna@acme.example", b"x")
    store.close()
    res = run("--config", str(config), "outbox", "list")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3
    assert len({line.index(" to anna@") for line in lines}) == 1, res.stdout


def test_install_service_says_when_the_unit_could_not_run_its_execstart(tmp_path: Path) -> None:
    # smsgw installed in a home directory (pyenv, pip --user, a venv there) wrote ExecStart=/root/...
    # without a word: ProtectHome=yes hides /root and /home from the service, whose start failed 203/EXEC.
    root = tmp_path / "root"
    args = ("install-service", "--root", str(root), "--hostname", "gw.example", "--force")
    res = run(*args, "--exec", "/home/alice/venv/bin/smsgw")
    assert res.returncode == 0, res.stderr  # --root: packaging may put it elsewhere; said, not refused
    home = "/home/alice/venv/bin/smsgw"
    said = f"warning: the service cannot run {home}: {home} lies in a home directory"
    assert said in res.stdout and "ProtectHome=yes" in res.stdout, res.stdout
    assert "--exec /opt/smsgw/venv/bin/smsgw" in res.stdout
    # A script outside the home directories whose interpreter is in one (a venv made from a pyenv python).
    script = tmp_path / "opt/smsgw/venv/bin/smsgw"
    script.parent.mkdir(parents=True)
    script.write_text("#!/root/.pyenv/versions/3.11.7/bin/python3\nimport sys\n")
    script.chmod(0o755)
    res = run(*args, "--exec", str(script))
    assert (
        f"warning: the service cannot run {script}: /root/.pyenv/versions/3.11.7/bin/python3 lies"
        in res.stdout
    )
    script.write_text("#!/usr/bin/python3\nimport sys\n")
    res = run(*args, "--exec", str(script))
    assert res.returncode == 0 and "ProtectHome" not in res.stdout, res.stdout


def test_install_service_refuses_an_execstart_hidden_from_the_service() -> None:
    from gateway.cli.serviceexec import refuse_unreachable

    with pytest.raises(common.CliError, match="ProtectHome=yes hides from it") as refused:
        refuse_unreachable("/root/.local/bin/smsgw", dry=False)  # without --root nothing may be written
    assert refused.value.code == common.EXIT_USAGE
    refuse_unreachable("/usr/bin/true", dry=False)
