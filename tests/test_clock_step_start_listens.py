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

from tests.stepback_world import DAY
from tests.test_clock_step_back_chunks import ROOT, killed_mid_move, plan_of, stopped, stopped_world


def start(config: Path, out: Path, offset: float, ids: int) -> subprocess.Popen[bytes]:
    """The daemon on a wall clock `offset` off the real one, stepped back 2 days by SIGUSR1, its move's
    chunks of `ids` ids."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.stepback_world", str(config), str(2 * DAY), str(ids), str(offset)]
    with out.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def test_a_move_cut_short_is_finished_after_the_next_start_is_ready(tmp_path: Path) -> None:
    config, path = stopped_world(tmp_path, 3_000, 600)
    out = tmp_path / "daemon.out"
    proc = start(config, out, 0.0, 10)
    try:
        killed_mid_move(proc, out, path)
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
