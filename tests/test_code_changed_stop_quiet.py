"""The stop after `intake.code_changed` is a stop, not a worker's crash.

A worker started on code changed under a running daemon (an upgrade) exits for the daemon to stop
and be started again on the new code. Its supervisor, not yet told of the stop, took the worker's
end for a fault: `worker.crashed error="RuntimeError: worker returned while the daemon was running"`
with a traceback followed the documented stop. The daemon, its worker process and the upgrade of
its code on disk are real.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, until, worker_config, worker_pids
from tests.test_process import ROOT


async def test_the_stop_for_changed_code_logs_no_worker_crash(tmp_path: Path) -> None:
    code = tmp_path / "code"
    for package in ("gateway", "smsc", "acl", "billing_reports"):
        shutil.copytree(ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
    async with HappySMSC() as smsc:
        path = worker_config(tmp_path, smsc.port, free_port(), 1)
        log = tmp_path / "daemon.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "--config", str(path), "run", "--json-logs"],
                cwd=code, stdout=out, stderr=out, env={**os.environ, "PYTHONPATH": str(code)},
            )  # fmt: skip
        try:
            await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
            upgraded = code / "gateway" / "intake_channel.py"
            upgraded.write_text(upgraded.read_text() + "\n# upgraded\n")
            (worker,) = worker_pids(tmp_path)
            os.kill(worker, signal.SIGKILL)  # its next start finds the code changed
            assert await asyncio.to_thread(proc.wait, 60) == 1  # for systemd to start it again
        finally:
            if proc.poll() is None:
                proc.kill()
    assert log_events(tmp_path, "intake.code_changed") and log_events(tmp_path, "daemon.stopped")
    crashed = [e for e in log_events(tmp_path, "worker.crashed") if "worker returned" in str(e.get("error"))]
    assert crashed == [], crashed
    assert b"Traceback" not in log.read_bytes()
