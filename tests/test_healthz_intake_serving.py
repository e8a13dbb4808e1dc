"""/healthz judges the relay port's processes by whether they serve it (`gateway.web.healthworkers`).

With one intake process, killed three times within 5 minutes and serving again, /healthz said 503
"no intake process takes mail" for a minute while the port answered 250 to every mail: a load
balancer pulled a working node. Killed once and restarting, or started and not serving yet (7.7 s
under load), it took no mail while /healthz said "ok". The real daemon and its worker process, the
relay port and /healthz over TCP, `smsgw status` as its own process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.billing_world import cli
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config_text, worker_pids
from tests.test_process import start_daemon


@asynccontextmanager
async def one_worker(tmp_path: Path) -> AsyncIterator[tuple[Path, int, int]]:
    """A daemon with `intake_processes = 1` and its web port: (config, relay port, web port)."""
    smtp_port, web_port = free_port(), free_port()
    path = tmp_path / "config.toml"
    async with HappySMSC() as smsc:
        text = worker_config_text(tmp_path, smsc.port, smtp_port, 1)
        path.write_text(text + f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{web_port}"\n')
        proc: subprocess.Popen[bytes] = await start_daemon(path, smtp_port)
        try:
            await serving(tmp_path, 1)
            yield path, smtp_port, web_port
        finally:
            await stop(proc)


async def serving(tmp_path: Path, starts: int) -> None:
    await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) >= starts, f"serving #{starts}")


async def killed(tmp_path: Path, crashes: int) -> None:
    """The worker running now killed with -9, and the daemon's supervision seen to take it as a crash."""
    os.kill(worker_pids(tmp_path)[-1], signal.SIGKILL)
    await until(lambda: len(log_events(tmp_path, "worker.crashed")) >= crashes, f"crash #{crashes}")


def banner(smtp_port: int) -> bytes:
    """The relay port's greeting within 2 s, b"" when none comes (nobody took the connection)."""
    with socket.create_connection(("127.0.0.1", smtp_port), timeout=2) as sock:
        try:
            return sock.recv(200)
        except TimeoutError:
            return b""


async def test_a_crash_looping_intake_process_serving_again_keeps_the_node_in(tmp_path: Path) -> None:
    async with one_worker(tmp_path) as (path, smtp_port, web_port):
        for n in (1, 2, 3):
            await killed(tmp_path, n)
            await serving(tmp_path, n + 1)
        to = f"601000001@{DOMAIN}"
        reply = send_blocking(smtp_port, mail(to, "A loop of the intake process"), [to])
        shown = cli(path, "status")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as c:
            health = await c.get("/healthz")
    assert reply.error is None and not reply.refused, reply  # the port takes mail: 250
    assert health.status_code == 200, health.text
    first, warning = health.text.splitlines()
    assert first == "ok", health.text
    assert warning.startswith("warning: worker intake-1 crash-looping: 3 crashes"), warning
    assert warning.endswith("running again; smsgw status and the log say why"), warning
    line = next(x for x in shown.stdout.splitlines() if x.startswith("worker intake-1"))
    assert "crash-looping" in line and shown.returncode == 1, shown.stdout  # status says the loop


async def test_an_intake_process_restarting_or_starting_takes_no_mail_and_healthz_says_so(
    tmp_path: Path,
) -> None:
    async with one_worker(tmp_path) as (_path, smtp_port, web_port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as c:
            await killed(tmp_path, 1)
            down = await c.get("/healthz")  # the supervisor's pause before the restart (1 s)
            await until(lambda: len(worker_pids(tmp_path)) == 2, "the restart")
            started = worker_pids(tmp_path)[-1]
            os.kill(started, signal.SIGSTOP)  # held before it serves: a start slow under load
            try:
                assert len(log_events(tmp_path, "intake.worker_serving")) == 1, "the restart served at once"
                starting = await c.get("/healthz")
                greeted = banner(smtp_port)
            finally:
                os.kill(started, signal.SIGCONT)
            await serving(tmp_path, 2)
            back = await c.get("/healthz")
    assert down.status_code == 503, down.text
    said = "no intake process takes mail: worker intake-1 not serving: waiting to restart, it ended"
    assert down.text.startswith(said), down.text
    assert greeted == b""  # nobody took the connection: the node took no mail
    assert starting.status_code == 503, starting.text
    assert starting.text.startswith(
        "no intake process takes mail: worker intake-1 not serving yet: starting for"
    ), starting.text
    assert (back.status_code, back.text) == (200, "ok\n")  # one crash, served again: no loop
