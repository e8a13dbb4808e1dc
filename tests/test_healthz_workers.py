"""/healthz answers 503 while a supervised worker crash-loops (`gateway.web.healthworkers`).

`smsgw status` named the dispatcher restarting (exit 1) while /healthz said "ok": every claim failed,
the supervisor restarted it every 30 s, no SMS left, and a load balancer kept sending mail there. A
real daemon, its SMSC over TCP, /healthz through a real HTTP client (the loop's window at given
times: tests/test_healthz_workers_window.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import dispatcher, supervisor
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB


async def test_a_crash_looping_dispatcher_is_503_naming_it_and_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = [True]
    original = dispatcher.claimer

    def broken_claimer(store: Any, end: Any, limit: int, now: float) -> Any:
        if not failing[0]:
            return original(store, end, limit, now)

        def claim() -> Any:
            raise sqlite3.OperationalError("disk I/O error")

        return claim

    monkeypatch.setattr(dispatcher, "claimer", broken_claimer)
    monkeypatch.setattr(supervisor, "BACKOFF_MIN_SECONDS", 0.01)  # three crashes without the test's waiting
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        worker = gw.daemon.supervisor.workers["dispatcher"]
        await gw.until(lambda: worker.restarts >= 3)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            health = await c.get("/healthz")
            assert health.status_code == 503, health.text
            assert health.text.startswith("worker dispatcher crash-looping: "), health.text
            assert "(OperationalError)" in health.text and "disk I/O" not in health.text  # public: the kind
            failing[0] = False  # mended: the worker runs again, but a load balancer waits to see it hold
            await gw.until(lambda: worker.state == "running")
            assert (await c.get("/healthz")).status_code == 503


async def test_a_single_crash_is_no_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = dispatcher.claimer
    made = [0]

    def flaky_claimer(store: Any, end: Any, limit: int, now: float) -> Any:
        made[0] += 1
        if made[0] > 1:
            return original(store, end, limit, now)

        def claim() -> Any:
            raise sqlite3.OperationalError("database is locked")

        return claim

    monkeypatch.setattr(dispatcher, "claimer", flaky_claimer)
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        worker = gw.daemon.supervisor.workers["dispatcher"]
        await gw.until(lambda: worker.restarts == 1 and worker.state == "running")
        await gw.until(
            lambda: any(link.get("state") == "active" for link in gw.daemon.web.web.links().values())
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            health = await c.get("/healthz")
    assert (health.status_code, health.text) == (200, "ok\n")
