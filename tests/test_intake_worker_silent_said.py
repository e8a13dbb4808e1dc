"""An intake process that stops beating (SIGSTOP, a hung loop) is said within seconds: `smsgw status`
names it silent and exits 1, and /healthz has a warning line; it is killed only after 30 s, and
until then its share of the relay port took no mail while status said "running" and /healthz "ok"
(only --json's last_beat_ago grew). The real daemon and its workers, `smsgw status` as its own
process, /healthz over real HTTP; the worker continued before the 30 s are up.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from tests.billing_world import cli
from tests.conftest import free_port
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config_text, worker_pids
from tests.test_process import start_daemon


async def test_a_stopped_intake_worker_is_said_silent_by_status_and_healthz(tmp_path: Path) -> None:
    smtp_port, web_port = free_port(), free_port()
    path = tmp_path / "config.toml"
    async with HappySMSC() as smsc:
        text = worker_config_text(tmp_path, smsc.port, smtp_port, 2)
        path.write_text(text + f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{web_port}"\n')
        proc = await start_daemon(path, smtp_port)
        try:
            await _stopped_worker_said(tmp_path, path, web_port)
        finally:
            await stop(proc)


async def _stopped_worker_said(tmp_path: Path, path: Path, web_port: int) -> None:
    await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 2, "the workers serving")
    worker = worker_pids(tmp_path)[0]
    os.kill(worker, signal.SIGSTOP)
    try:
        shown = cli(path, "status")

        def silent() -> bool:
            nonlocal shown
            shown = cli(path, "status")
            return "silent for" in shown.stdout

        await until(silent, "status saying the worker silent", 300)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as c:
            health = await c.get("/healthz")
    finally:
        os.kill(worker, signal.SIGCONT)
    line = next(x for x in shown.stdout.splitlines() if "silent for" in x)
    assert line.startswith("worker intake-") and "running" in line, line
    assert "its share of the port takes no mail" in line
    assert shown.returncode == 1, shown.stdout
    assert health.status_code == 200, health.text  # the other worker takes the mail
    assert "warning: worker intake-" in health.text and "silent for" in health.text, health.text
    await until(lambda: "silent for" not in cli(path, "status").stdout, "the worker beating again", 300)
