"""SIGTERM while the daemon waits for its intake workers to serve: a stop, not a start.

The start's wait cancelled its gathered waits and never read them: the stop's cancellation became
the gather's exception, logged by asyncio as an error ("exception was never retrieved"), and the
daemon then announced itself ready (`daemon.ready`, systemd's READY=1) on its way out. Here the
daemon reads no worker's `R`, so that it is certainly still waiting when the signal comes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import free_port
from tests.test_intake_workers import log_events, until, worker_config

ROOT = Path(__file__).resolve().parents[1]
MARK = "test: waiting for the workers"
# The daemon never takes a worker for serving, and says when its start waits for them.
HOLD_NOT_READY = f"""
import sys
import gateway.intake_workers as iw
iw._READY = -1
_wait_ready = iw.IntakeWorkers.wait_ready
async def _marked(self, stop=None):
    print({MARK!r}, file=sys.stderr, flush=True)
    await _wait_ready(self, stop)
iw.IntakeWorkers.wait_ready = _marked
from gateway.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


async def test_sigterm_while_the_workers_get_ready_stops_cleanly_and_never_says_ready(tmp_path: Path) -> None:
    config = worker_config(tmp_path, free_port(), free_port(), 1)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's end of the notify protocol
    name = f"smsgw-test-{uuid.uuid4().hex}"
    notify.bind("\0" + name)
    notify.setblocking(False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": "@" + name}
    env.pop("SMSGW_CONFIG", None)
    log = tmp_path / "daemon.log"
    command = [sys.executable, "-c", HOLD_NOT_READY, "--config", str(config), "run", "--json-logs"]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out, env=env)
    try:
        await until(lambda: MARK in log.read_text() or proc.poll() is not None, "the start waiting")
        assert proc.poll() is None, log.read_text()
        await until(lambda: log_events(tmp_path, "intake.worker_started"), "the worker started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    told = []
    with notify:
        while True:
            try:
                told.append(notify.recv(4096).decode())
            except BlockingIOError:
                break
    text = log.read_text()
    assert "never retrieved" not in text, text
    assert log_events(tmp_path, "daemon.ready") == []
    assert "READY=1" not in told and "STOPPING=1" in told, told
    assert log_events(tmp_path, "daemon.stopped"), text
