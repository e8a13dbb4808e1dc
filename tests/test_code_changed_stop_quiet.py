"""The stop after `intake.code_changed` is a stop, not a worker's crash.

A worker started on code changed under a running daemon (an upgrade) exits for the daemon to stop
and be started again on the new code. Its supervisor, not yet told of the stop, took the worker's
end for a fault: `worker.crashed error="RuntimeError: worker returned while the daemon was running"`
with a traceback followed the documented stop. The daemon, its worker process and the upgrade of
its code on disk are real.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_intake_workers import log_events
from tests.test_intake_workers_signals import stop_on_upgraded_code


async def test_the_stop_for_changed_code_logs_no_worker_crash(tmp_path: Path) -> None:
    assert await stop_on_upgraded_code(tmp_path) == 1  # for systemd to start it again
    assert log_events(tmp_path, "intake.code_changed") and log_events(tmp_path, "daemon.stopped")
    crashed = [e for e in log_events(tmp_path, "worker.crashed") if "worker returned" in str(e.get("error"))]
    assert crashed == [], crashed
    assert b"Traceback" not in (tmp_path / "daemon.log").read_bytes()
