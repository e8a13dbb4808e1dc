"""Root's `check-config` beside a daemon an admin started by hand as another user, no unit installed:
the billing_dir hint names a user the machine has.

It said "give it to the user that runs the service (`chown smsgw: ...`)" though no user smsgw existed:
the fallback to install-service's default user. Now the user named is the daemon's (its lock's holder),
else the directory's owner. The daemon runs for real as the user nobody; check-config as root.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
from pathlib import Path

import pytest

from gateway.sudoline import UNITS
from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT, until_listening
from tests.test_sudo_hints_name_the_command import as_nobody, world

__all__ = ["world"]  # the fixture, used by name

NOBODY = 65534
NAMELESS_UID = 54321


def no_smsgw_here() -> bool:
    try:
        pwd.getpwnam("smsgw")
    except KeyError:
        return not any(unit.exists() for unit in UNITS)
    return False


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not no_smsgw_here(), reason="root, on a machine with no smsgw user nor unit"
)


def check_config(config: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100000"}
    env.pop("SMSGW_CONFIG", None)
    out = subprocess.run(
        [*CLI, "--config", str(config), "check-config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    return " ".join((out.stdout + out.stderr).split())


async def test_the_billing_dir_hint_names_the_daemons_user_not_a_missing_smsgw(world: Path) -> None:
    smtp_port = free_port()
    billing = world / "billing"
    config = world / "config.toml"
    config.write_text(
        config_text(world, smsc_port=free_port(), smtp_port=smtp_port, billing_dir=str(billing))
    )
    config.chmod(0o644)
    for made in (world / "state", billing):
        made.mkdir(mode=0o750)
        os.chown(made, NOBODY, NOBODY)  # the daemon's, as `chown -R nobody:` left them
    log = world / "daemon.log"
    with log.open("ab") as out:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
        command = [*as_nobody(), *CLI, "--config", str(config), "run"]
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out, env=env)
    try:
        await until_listening(proc, smtp_port, log)
        said = await asyncio.to_thread(check_config, config)
        assert f"billing_dir: {billing} belongs to user nobody, the service's user" in said, said
        assert "run as the service's user (`sudo -u nobody " in said, said
        assert "chown smsgw" not in said, said
        # Another owner's directory: given to the user the daemon runs as, not to a missing smsgw.
        os.chown(billing, NAMELESS_UID, NAMELESS_UID)
        said = await asyncio.to_thread(check_config, config)
        assert f"(`chown nobody: {billing}`)" in said, said
        assert "chown smsgw" not in said, said
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
