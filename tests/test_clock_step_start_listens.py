"""A step back's move cut short by a crash is finished after the next start listens, not before.

The start's first look, made before SMTP, the links and the panel open, finished the move: a step of
30 days held them shut for tens of seconds (refused mail, links down, systemd's start timeout near).
The worker's looks finish it now, once the daemon is ready. Real daemon processes on a real SQLite
file (`tests.stepback_world`), killed in the middle of the move; the restart's chunks are of one id,
so that its move outlasts the start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.stepback_world import DAY, fill
from tests.test_clock_step_back_chunks import ROOT, plan_of
from tests.test_process import wait_for_text


def start(config: Path, out: Path, offset: float, ids: int) -> subprocess.Popen[bytes]:
    """The daemon on a wall clock `offset` off the real one, stepped back 2 days by SIGUSR1, its move's
    chunks of `ids` ids."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.stepback_world", str(config), str(2 * DAY), str(ids), str(offset)]
    with out.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def stopped(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def test_a_move_cut_short_is_finished_after_the_next_start_is_ready(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))  # no link up: nothing is sent
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / "smsgw.db"
    Store.open(path).close()
    fill(path, time.time(), 3.0, 3_000, 600)
    out = tmp_path / "daemon.out"
    proc = start(config, out, 0.0, 10)
    try:
        wait_for_text(out, 60)
        while "ready" not in out.read_text():
            time.sleep(0.05)
        time.sleep(3.0)  # the clock check's first looks: its reading
        proc.send_signal(signal.SIGUSR1)  # the wall clock steps back 2 days
        deadline = time.monotonic() + 60
        while (plan := plan_of(path)) is None or plan["at"]["sms"] <= plan["floors"][0] + 100:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # in the middle of the move
        proc.wait(30)
    finally:
        stopped(proc)
    assert plan_of(path) is not None
    again = tmp_path / "again.out"
    proc = start(config, again, -2 * DAY, 1)  # started again on the stepped clock
    try:
        deadline = time.monotonic() + 120
        while not (again.exists() and "ready" in again.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, again.read_text()[-3000:]
            time.sleep(0.01)
        assert plan_of(path) is not None, "the move was finished before the daemon was ready"
        while plan_of(path) is not None:  # and the worker's looks finish it
            assert proc.poll() is None and time.monotonic() < deadline, again.read_text()[-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        stopped(proc)
