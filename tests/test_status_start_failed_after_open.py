"""`smsgw status` after a start that failed on a port once its database was open.

The start file stays from the database's open until the daemon's first status file, so that a start
killed in between is named (`gateway.startprogress`). A start that failed there on its own (a port
taken after `smsgw run` probed it, the simulator's port) left it too, and `smsgw status` then said the
start "was cut short while opening the database" (exit 3), where the start had said why it stopped.
`smsgw run` as a process against real listening sockets, then `smsgw status` as a process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_FAILURE
from tests.conftest import config_text, free_port
from tests.test_process import ROOT, smsgw
from tests.test_start_port_taken import RUN


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("taken", ["relay", "simulator"])
def test_a_start_failing_on_a_port_after_the_open_is_not_said_cut_short(
    tmp_path: Path, held_port: int, taken: str
) -> None:
    text = config_text(tmp_path, smsc_port=free_port())
    if taken == "relay":
        text = text.replace('\nlisten = "127.0.0.1:0"', f'\nlisten = "127.0.0.1:{held_port}"', 1)
    else:
        simulator = f"[simulator]\nenabled = true\nsmpp_port = {held_port}\ncontrol_port = {free_port()}\n"
        text = text.replace("[simulator]\nenabled = false\n", simulator)
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    command = [sys.executable, "-c", RUN, "--config", str(config), "run"]
    ran = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert ran.returncode == EXIT_FAILURE, ran.stderr
    assert str(held_port) in ran.stderr.strip().splitlines()[-1], ran.stderr
    assert (tmp_path / "state" / "smsgw.db").exists()  # it failed after the open
    assert not (tmp_path / "state" / "starting.json").exists()
    res = smsgw(config, "status")
    said = res.stdout + res.stderr
    assert "cut short" not in said and "opening the database" not in said, said
    assert res.returncode != 3 or "not running" in said, said
