"""What a new admin met walking through the README, as commands in a subprocess: times shown in the
configured zone, mo list --since in that zone, a second run naming the running daemon, outbox list's
widths, install-service telling when the unit could not run its ExecStart or one hidden from the
service. Split from test_first_day_cli.py by subject (it was over 400 lines)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import statelock
from gateway.cli import common
from gateway.store.db import Store
from tests.test_first_day_cli import run, write_config

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
