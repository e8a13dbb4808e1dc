"""`smsgw status` and /healthz agree while the relay port's only intake process is not serving.

For the first seconds of its restart (started, not serving yet: 7.7 s under load), /healthz said 503
"no intake process takes mail" while status said the worker was "running" and exited 0: a monitor
reading status was told all was well while the node took no mail. Status now says the worker does not
serve the port and exits 1, as README's exit codes say for a worker restarting. The real daemon and
its worker process, /healthz over TCP, `smsgw status` as its own process, the real status file.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from gateway.statusfile import read_status
from tests.billing_world import cli
from tests.test_healthz_intake_serving import killed, one_worker, serving
from tests.test_intake_workers import log_events, until, worker_pids


def restarted_in_status_file(state_dir: Path, since: float) -> bool:
    """The status file written after `since` (the restart), its worker running again: the state status
    reads while the restarted process has not served yet."""
    status = read_status(state_dir) or {}
    worker = status.get("workers", {}).get("intake-1", {})
    return float(status.get("updated_at", 0)) > since and worker.get("state") == "running"


async def test_status_exits_1_while_the_only_intake_process_does_not_serve_yet(tmp_path: Path) -> None:
    async with one_worker(tmp_path) as (path, _smtp_port, web_port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as c:
            await killed(tmp_path, 1)
            await until(lambda: len(worker_pids(tmp_path)) == 2, "the restart")
            started = worker_pids(tmp_path)[-1]
            os.kill(started, signal.SIGSTOP)  # held before it serves: a start slow under load
            since = time.time()
            try:
                assert len(log_events(tmp_path, "intake.worker_serving")) == 1, "the restart served at once"
                await until(lambda: restarted_in_status_file(tmp_path / "state", since), "the status file")
                starting = await c.get("/healthz")
                shown = cli(path, "status")
            finally:
                os.kill(started, signal.SIGCONT)
            await serving(tmp_path, 2)
            served = time.time()
            await until(lambda: restarted_in_status_file(tmp_path / "state", served), "the status file")
            back = cli(path, "status")
    assert starting.status_code == 503, starting.text
    line = next(x for x in shown.stdout.splitlines() if x.startswith("worker intake-1"))
    assert "not serving the relay port (yet): it takes no mail" in line, shown.stdout
    assert shown.returncode == 1, shown.stdout
    line = next(x for x in back.stdout.splitlines() if x.startswith("worker intake-1"))
    assert "not serving" not in line, back.stdout
