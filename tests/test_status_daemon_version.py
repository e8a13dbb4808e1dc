"""Whether the running daemon is the installed smsgw, after an upgrade without a restart, and how to
restart it on this machine.

`smsgw status` showed a daemon of 0.2.36 under 0.2.37's files as `running, pid N`: nothing said the
upgrade had not taken. The daemon now names its version in its status file, and status says
`running 0.2.36, pid N, installed 0.2.37: restart it (...)` where the two differ (--json: both). The
restart is said in this machine's words (`tests.test_restart_words`).

Real peers: the daemon in this process writing its status file, the CLI as a process and in this
process, another daemon's lock held by a process of its own, real SQLite files.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import gateway
from gateway.config import parse_config
from gateway.statelock import LOCK_FILE
from gateway.statusfile import read_status
from tests.conftest import config_text, free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_account_show import CLI
from tests.test_process import smsgw
from tests.test_restart_words import cgroups as cgroups  # fixtures
from tests.test_restart_words import no_unit as no_unit
from tests.test_restart_words import older_daemon
from tests.test_restart_words import unit as unit

INSTALLED = gateway.__version__


def daemon_line(cli: CLI) -> str:
    code, out, err = cli("status")
    assert code in (0, 1), err
    return next(line for line in out if line.startswith("daemon "))


async def test_the_daemon_names_its_version_and_status_says_it_runs_the_installed_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    async with HappySMSC() as smsc:
        path.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=free_port()))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: (read_status(cfg.state_dir) or {}).get("version") is not None)
            assert read_status(cfg.state_dir)["version"] == INSTALLED  # type: ignore[index]
            text = await asyncio.to_thread(smsgw, path, "status")
            shown = await asyncio.to_thread(smsgw, path, "status", "--json")
    assert any(line.startswith("daemon    running, pid ") for line in text.stdout.splitlines()), text
    daemon = json.loads(shown.stdout)["daemon"]
    assert daemon["version"] == daemon["installed_version"] == INSTALLED


def test_a_daemon_of_another_version_is_told_with_how_to_restart_it(cli: CLI, no_unit: None) -> None:
    cli.ok("account", "add", "beta")
    lock = cli.path.parent / "state" / LOCK_FILE
    with older_daemon(cli, "0.2.36") as pid:
        line = daemon_line(cli)
        _, out, _ = cli("status", "--json")
    assert line == (
        f"daemon    running 0.2.36, pid {pid}, installed {INSTALLED}: restart it (no systemd unit is"
        f" installed, so it was started by hand: stop it there, or `kill {pid}`, the pid in {lock}, and"
        " start it again as it was started)"
    )
    daemon = json.loads("\n".join(out))["daemon"]
    assert daemon["state"] == "running" and daemon["pid"] == pid
    assert daemon["version"] == "0.2.36" and daemon["installed_version"] == INSTALLED


def test_a_daemon_naming_no_version_is_an_older_one(
    cli: CLI, unit: None, cgroups: Callable[[int, str], None]
) -> None:
    cli.ok("account", "add", "beta")
    with older_daemon(cli, None) as pid:
        cgroups(pid, "0::/system.slice/smsgw.service\n")  # it runs as the unit's service
        line = daemon_line(cli)
        _, out, _ = cli("status", "--json")
    assert line == (
        f"daemon    running an older smsgw (its status names no version), pid {pid}, installed"
        f" {INSTALLED}: restart it (`systemctl restart smsgw`)"
    )
    daemon = json.loads("\n".join(out))["daemon"]
    assert daemon["version"] is None and daemon["installed_version"] == INSTALLED
