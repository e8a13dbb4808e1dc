"""`smsgw status` run by a user who may not read the database: a monitoring user beside a daemon
that runs as root, its database 0600.

It said "not running" with exit 3 while the daemon ran, and told the user to move the live database
aside, as for a file another user planted; with the state directory closed to that user it printed a
bare "smsgw.db: Permission denied", exit 1, and no JSON for the check parsing stdout. Now it says it
cannot read the database, whose it is and the line to run it as that user, in JSON with --json, exit 1
(status itself fails), and the daemon's state as far as this user can tell. The daemon runs for real
as root; status runs as the user nobody.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port
from tests.test_process import ROOT, start_daemon
from tests.test_sudo_hints_name_the_command import as_nobody, world

__all__ = ["world"]  # the fixture, used by name

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a daemon of root and a status of nobody")


def configured(world: Path) -> tuple[Path, int]:
    smtp_port = free_port()
    config = world / "config.toml"
    config.write_text(config_text(world, smsc_port=free_port(), smtp_port=smtp_port))
    config.chmod(0o644)  # the monitoring user reads the config (no secret of note in a test)
    return config, smtp_port


@asynccontextmanager
async def roots_daemon(world: Path) -> AsyncIterator[tuple[Path, Path, subprocess.Popen[bytes]]]:
    """Root's daemon running on the config of `configured`: the config, the state directory and the
    daemon, which must stop at SIGTERM with exit 0 when the block ends."""
    config, smtp_port = configured(world)
    proc = await start_daemon(config, smtp_port)
    try:
        yield config, world / "state", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


def status(prefix: list[str], python: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "100000"}
    if python != sys.executable:
        env["LD_LIBRARY_PATH"] = str(Path(python).parents[1] / "lib")
    command = [*prefix, python, "-m", "gateway.cli", "--config", str(config), "status", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=60)


@pytest.fixture
def plain_nobody(world: Path) -> Iterator[tuple[list[str], str]]:
    """The user nobody with no capability at all (a closed directory stays closed), and a Python it
    may run: this interpreter's installation bound read-only into a directory every user may enter
    (it may lie under /root)."""
    if sys.prefix != sys.base_prefix or shutil.which("setpriv") is None:
        pytest.skip("needs setpriv and an interpreter outside a venv")
    point = world / "python"
    point.mkdir()
    made = subprocess.run(["mount", "--bind", "-o", "ro", sys.base_prefix, str(point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"no bind mount here: {made.stderr.decode()}")
    try:
        python = point / Path(sys.executable).relative_to(sys.base_prefix)
        user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]
        yield user, str(python)
    finally:
        subprocess.run(["umount", str(point)], check=True)


async def test_status_of_a_user_who_may_not_read_roots_database_says_so_not_that_nothing_runs(
    world: Path, plain_nobody: tuple[list[str], str]
) -> None:
    async with roots_daemon(world) as (config, state, proc):
        assert (state / "smsgw.db").stat().st_mode & 0o777 == 0o600
        # nobody reads every file (as a user in the files' group would), owns none of them.
        state.chmod(0o755)
        out = await asyncio.to_thread(status, as_nobody(), sys.executable, config, "--json")
        assert out.returncode == 1, (out.stdout, out.stderr)
        said = json.loads(out.stdout)
        assert said["daemon"]["state"] == "running", said  # its lock and status file tell
        assert said["database"] == str(state / "smsgw.db")
        error = said["error"]
        assert "cannot read the database" in error and "belongs to user root" in error, error
        assert "run status as root (`sudo -u root " in error and "status --json`)" in error, error
        assert "move it aside" not in error + out.stderr
        # The state directory closed to the user: no lock, no status file, no database to read.
        state.chmod(0o700)
        prefix, python = plain_nobody
        for args in (["--json"], []):
            out = await asyncio.to_thread(status, prefix, python, config, *args)
            assert out.returncode == 1, (out.stdout, out.stderr)
            assert "Traceback" not in out.stderr and "Permission denied" not in out.stderr, out.stderr
            assert f"state_dir {state} (0700, user root) is closed to user nobody" in out.stderr, out.stderr
            assert "run status as root" in out.stderr and "move it aside" not in out.stderr
            if args:
                said = json.loads(out.stdout)
                assert said["daemon"]["state"].startswith("unknown"), said
                assert "closed to user nobody" in said["error"]
        assert proc.poll() is None


async def test_a_database_others_may_read_is_not_said_to_be_read_only_by_its_owner(
    world: Path, plain_nobody: tuple[list[str], str]
) -> None:
    """Root's database mode 0644: status as nobody said "only its owner reads it (mode 0644; no group
    gives another user access)", which the mode it named belied. What holds is that smsgw opens a
    database only as its owner."""
    async with roots_daemon(world) as (config, state, proc):
        state.chmod(0o755)
        (state / "smsgw.db").chmod(0o644)
        prefix, python = plain_nobody
        out = await asyncio.to_thread(status, prefix, python, config)
        assert out.returncode == 1, (out.stdout, out.stderr)
        assert "belongs to user root, who runs the daemon, and smsgw opens a database only as its owner;" in (
            out.stderr
        ), out.stderr
        assert "(mode " not in out.stderr and "only its owner reads it" not in out.stderr, out.stderr
        assert "run status as root (`sudo -u root " in out.stderr, out.stderr
        assert proc.poll() is None
