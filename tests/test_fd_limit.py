"""The daemon raises its open-file limit to the hard one at the start, and says when it stays too low.

Started from a shell with a soft limit of 64 (`ulimit -n`), the daemon ran out of descriptors with a
few dozen SMTP sessions: libuv closed new clients at once, with no 421 and no log line, and idle
sessions stopped all mail. The real daemon as a process under `ulimit`, its limits read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT, until_listening


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line")


async def _run_under(tmp_path: Path, ulimit: str) -> tuple[int, list[dict[str, object]]]:
    """The daemon under `ulimit` (a shell's words) until it listens: its soft limit then, and its log."""
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))
    config.chmod(0o640)
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        command = [
            "sh",
            "-c",
            f'{ulimit} && exec "$@"',
            "sh",
            *CLI,
            "--config",
            str(config),
            "run",
            "--json-logs",
        ]
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out)
    try:
        await until_listening(proc, smtp_port, log, within=30)
        soft = _soft_nofile(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    lines = []
    for line in log.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return soft, lines


async def test_a_low_soft_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    soft, lines = await _run_under(tmp_path, "ulimit -Sn 64 && ulimit -Hn 4096")
    assert soft == 4096
    assert not [e for e in lines if e.get("event") == "config.fd_limit"]


async def test_a_hard_limit_too_low_for_max_connections_is_said(tmp_path: Path) -> None:
    soft, lines = await _run_under(tmp_path, "ulimit -Sn 64 && ulimit -Hn 256")
    assert soft == 256
    (said,) = [e for e in lines if e.get("event") == "config.fd_limit"]
    assert "the open-file limit is 256, too few for [smtp] max_connections = 500" in str(said["detail"])
