"""The hint to another user beside a daemon that runs as root on root's state directory.

Run as nobody, check-config said "not writable by this user; it belongs to root: give it to the user
that runs the service (chown -R nobody: .../state)": wrong while root's daemon runs on it, and done,
it locked root's daemon out of its own files. The user to run as is root, which runs the daemon.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.test_process import CLI, ROOT
from tests.test_status_other_user import plain_nobody, roots_daemon, status
from tests.test_sudo_hints_name_the_command import as_nobody, world

__all__ = ["plain_nobody", "world"]  # the fixtures, used by name


def _as_nobody(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "100000", "HOME": "/tmp"}
    command = [*as_nobody(), *CLI, "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=60)


async def test_check_config_beside_roots_daemon_says_to_run_it_as_root_not_to_give_the_directory_away(
    world: Path,
) -> None:
    async with roots_daemon(world) as (config, state, _):
        state.chmod(0o755)
        res = await asyncio.to_thread(_as_nobody, config, "check-config")
    said = res.stdout + res.stderr
    assert "chown" not in said, said
    assert "the daemon runs as root" in said, said
    assert "run this as root" in said, said


async def test_status_that_may_not_read_roots_status_file_says_so_not_that_the_daemon_is_starting(
    world: Path, plain_nobody: tuple[list[str], str]
) -> None:
    async with roots_daemon(world) as (config, state, proc):
        state.chmod(0o755)
        for _ in range(300):  # its first status, written within 2 s of the start
            if (state / "status.json").exists():
                break
            await asyncio.sleep(0.1)
        assert (state / "status.json").stat().st_mode & 0o777 == 0o600
        # The state directory given to nobody, as the old hint said; root's daemon rewrites its status.
        subprocess.run(["chown", "-R", "65534:65534", str(state)], check=True)
        for _ in range(300):
            if (state / "status.json").stat().st_uid == 0:
                break
            await asyncio.sleep(0.1)
        prefix, python = plain_nobody
        out = await asyncio.to_thread(status, prefix, python, config, "--json")
        text = await asyncio.to_thread(status, prefix, python, config)
    daemon = json.loads(out.stdout)["daemon"]["state"]
    assert "has not written its status yet" not in daemon, daemon
    assert daemon.startswith(f"running (pid {proc.pid}), its status unknown"), daemon
    assert (
        "belongs to root and this user may not read it; run this as root (the daemon runs as root)" in daemon
    )
    assert "has not written its status yet" not in text.stdout + text.stderr, text
    assert out.returncode == text.returncode == 1
