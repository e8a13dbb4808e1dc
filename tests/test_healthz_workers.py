"""/healthz answers 503 while the dispatcher crash-loops (`gateway.web.healthworkers`).

`smsgw status` named the dispatcher restarting (exit 1) while /healthz said "ok": every claim failed,
the supervisor restarted it every 30 s, no SMS left, and a load balancer kept sending mail there. A
worker whose loop leaves the node working (housekeeping) is a warning line in a 200, and a database
locked by another process is no crash at all. A real daemon, its SMSC over TCP, /healthz through a
real HTTP client (the loop's window at given times: tests/test_healthz_workers_window.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing_reports.failedjobs import failures, unkept
from gateway import dispatcher, scheduler, supervisor
from gateway.housekeeping import Housekeeping
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


async def test_a_crash_looping_housekeeping_leaves_the_node_200_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its crash forced (nothing real fails it on cue); the node still takes mail and sends SMS.
    async def broken_run(self: Housekeeping) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Housekeeping, "run", broken_run)
    monkeypatch.setattr(supervisor, "BACKOFF_MIN_SECONDS", 0.01)
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        worker = gw.daemon.supervisor.workers["housekeeping"]
        await gw.until(lambda: worker.restarts >= 3)
        await gw.until(
            lambda: any(link.get("state") == "active" for link in gw.daemon.web.web.links().values())
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            health = await c.get("/healthz")
        state = gw.daemon.supervisor.snapshot()["housekeeping"]["state"]
    assert health.status_code == 200, health.text
    first, warning = health.text.splitlines()
    assert first == "ok" and warning.startswith("warning: worker housekeeping crash-looping: "), health.text
    assert "(OperationalError)" in warning and "disk I/O" not in warning
    assert state == "crash-looping"  # what `smsgw status` shows, and exits 1 for


async def test_a_database_locked_by_another_process_is_no_crash_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An sqlite3 shell holding the write lock fails the workers' writes with StoreBusy: each is
    # retried, and counted as a crash the minute after the lock ended was "crash-looping".
    monkeypatch.setattr(supervisor, "BACKOFF_MIN_SECONDS", 0.01)
    monkeypatch.setattr(scheduler, "UNKEPT_SECONDS", 0.2)
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        await gw.until(
            lambda: any(link.get("state") == "active" for link in gw.daemon.web.web.links().values())
        )
        gw.store.db.background_patience = 0.2  # the workers' writes give up within the test
        workers = gw.daemon.supervisor.workers.values()
        holder = sqlite3.connect(gw.config.db_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            await gw.until(lambda: sum(w.restarts for w in workers) >= 3)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        retried = {w.name: w.restarts for w in workers if w.restarts}
        crashes = {w.name: list(w.crashed_at) for w in workers if w.crashed_at}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            await gw.until(lambda: gw.store.db.trouble() is None)
            # The start's purge, failed on the lock with its record: kept once the lock is gone, and run
            # again at once (`scheduler.failures_unkept`), which ends it.
            await gw.until(lambda: not unkept(gw.store) and not failures(gw.store.db.conn))
            health = await c.get("/healthz")
    assert retried and not crashes, (retried, crashes)
    assert (health.status_code, health.text) == (200, "ok\n")
