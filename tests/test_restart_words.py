"""How to restart an older daemon a newer command will not upgrade the database under, in this machine's
words.

A command of a newer smsgw run while an older daemon runs refuses to upgrade the database under it and
said `restart it on this version first (systemctl restart smsgw)` whether or not a unit is installed:
on a machine where the daemon was started by hand, that command only answers "Unit smsgw.service not
found". It now says `systemctl restart smsgw` only where a unit is installed, else to kill the pid (with
where it is) and start it again as it was started, the words `restore` has said to stop it in
(`gateway.cli.restartwords`).

Real peers: the CLI in this process, an older daemon's lock held by a process of its own, a real SQLite
file at an older schema.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from gateway.cli.restartwords import how_to_restart
from gateway.housekeeping import write_status
from gateway.statelock import LOCK_FILE
from tests.test_account_show import CLI
from tests.test_status_lock import HOLDER
from tests.test_store import undo_migration_22


@pytest.fixture
def no_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.sudoline.UNITS", (tmp_path / "no" / "smsgw.service",))


@pytest.fixture
def unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "smsgw.service").write_text("[Service]\n")
    monkeypatch.setattr("gateway.sudoline.UNITS", (tmp_path / "smsgw.service",))


@pytest.fixture
def cgroups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int, str], None]:
    """Puts a pid in a cgroup, in a stand-in of /proc: no test runs as a systemd service."""
    proc = tmp_path / "proc"
    monkeypatch.setattr("gateway.cli.restartwords.PROC", proc)

    def put(pid: int, cgroup: str) -> None:
        (proc / str(pid)).mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "cgroup").write_text(cgroup)

    return put


@contextmanager
def older_daemon(cli: CLI, version: str | None) -> Iterator[int]:
    """A daemon of another smsgw: its lock on the state directory, and its status file naming
    `version` (None: none, as every smsgw before 0.2.38 wrote it)."""
    state = cli.path.parent / "state"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state / LOCK_FILE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as old:
        assert old.stdin is not None and old.stdout is not None
        try:
            assert old.stdout.readline() == b"held\n"
            said = {"pid": old.pid, "links": {}} | ({} if version is None else {"version": version})
            write_status(state / "status.json", said)
            yield old.pid
        finally:
            old.stdin.close()
            old.wait(30)


def older_schema(cli: CLI) -> None:
    cli.ok("account", "add", "beta")
    with closing(sqlite3.connect(cli.path.parent / "state" / "smsgw.db")) as conn:
        undo_migration_22(conn)
        conn.execute("UPDATE schema_version SET version = 21")
        conn.commit()


def test_the_refusal_under_an_older_daemon_says_kill_where_no_unit_is_installed(
    cli: CLI, no_unit: None
) -> None:
    older_schema(cli)
    lock = cli.path.parent / "state" / LOCK_FILE
    with older_daemon(cli, None) as pid:
        code, _, err = cli("status")
    assert code == 1 and "restart it on this version first (no systemd unit is installed" in err, err
    assert f"`kill {pid}`, the pid in {lock}, and start it again as it was started)" in err
    assert "systemctl" not in err


def test_the_refusal_under_an_older_daemon_says_systemctl_where_it_runs_in_the_unit(
    cli: CLI, unit: None, cgroups: Callable[[int, str], None]
) -> None:
    older_schema(cli)
    with older_daemon(cli, None) as pid:
        cgroups(pid, "0::/system.slice/smsgw.service\n")
        code, _, err = cli("status")
    assert code == 1 and "restart it on this version first (`systemctl restart smsgw`)" in err, err


def test_a_daemon_started_by_hand_beside_an_installed_unit_is_told_to_be_killed(cli: CLI, unit: None) -> None:
    # A staging daemon started by hand on a machine where production's unit is installed: told
    # `systemctl restart smsgw`, the admin restarted production's daemon, and this one ran on. Its
    # cgroup (a real process's: the test's own, a login's session or a container's root) names no
    # smsgw service.
    older_schema(cli)
    lock = cli.path.parent / "state" / LOCK_FILE
    with older_daemon(cli, None) as pid:
        code, _, err = cli("status")
    assert code == 1 and f"restart it on this version first (pid {pid} runs in no systemd service" in err, err
    assert f"`kill {pid}`, the pid in {lock}, and start it again as it was started)" in err
    assert "systemctl" not in err


@pytest.mark.parametrize(
    ("cgroup", "said"),
    [
        # Another unit installed for smsgw, its cgroup v1's systemd line: that unit is named.
        (
            "12:memory:/system.slice/smsgw-staging.service\n1:name=systemd:/system.slice/smsgw-staging.service\n",
            "`systemctl restart smsgw-staging`",
        ),
        # Started from a shell that cron (or a CI runner) started: restarting cron restarts no smsgw.
        ("0::/system.slice/cron.service\n", "runs in no systemd service"),
        # A user's own service: `systemctl` without `--user` does not know it.
        (
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/smsgw.service\n",
            "runs in no systemd service",
        ),
    ],
)
def test_the_service_named_is_the_smsgw_one_the_daemon_runs_in(
    tmp_path: Path, unit: None, cgroups: Callable[[int, str], None], cgroup: str, said: str
) -> None:
    (tmp_path / "smsgw-staging.service").write_text(
        "[Service]\nExecStart=/opt/smsgw/bin/smsgw -c /etc/st.toml run\n"
    )
    (tmp_path / "cron.service").write_text("[Service]\nExecStart=/usr/sbin/cron -f\n")
    cgroups(4242, cgroup)
    assert said in how_to_restart(tmp_path / "state", 4242)


def test_restore_says_to_start_the_unit_that_runs_on_its_config_only(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a restore beside production's unit, a staging daemon's admin was told `systemctl start
    # smsgw`: production's daemon, not the one stopped for the restore.
    cli.ok("account", "add", "beta")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    installed = tmp_path / "units" / "smsgw.service"
    installed.parent.mkdir()
    monkeypatch.setattr("gateway.sudoline.UNITS", (installed,))
    installed.write_text(
        "[Service]\nExecStart=/usr/bin/smsgw --config /etc/smsgw/config.toml run --json-logs\n"
    )
    out = cli.ok("restore", str(backup))
    assert any("start the daemon (`smsgw run`, as it was started before)" in line for line in out), out
    installed.write_text(f"[Service]\nExecStart=/usr/bin/smsgw --config {cli.path} run --json-logs\n")
    out = cli.ok("restore", str(backup))
    assert any("start the daemon (systemctl start smsgw)" in line for line in out), out
