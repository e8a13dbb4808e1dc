"""How the daemon's tasks may end, against the real daemon: a worker ended by a cancel of its own,
the watchdog's own fault, an error that ends the supervisor, and a stop while a panel request is
open. Each was silent (or late) before: a dead worker shown "running", every worker cancelled
with the ports still taking connections, mail answered 250 for 10 s after SIGTERM.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import parse_config
from gateway.dispatcher import Dispatcher
from gateway.supervisor import Supervisor
from gateway.vital import DaemonTaskLost
from tests.conftest import DOMAIN, Running, free_port, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import worker_config_text
from tests.test_web_browser import WEB


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


def ends_once(monkeypatch: pytest.MonkeyPatch, how: Any) -> list[int]:
    """The dispatcher's first run ends by `how` (awaited); its later runs are the real one."""
    original = Dispatcher.run
    runs = [0]

    async def run(self: Dispatcher) -> None:
        runs[0] += 1
        if runs[0] == 1:
            await how()
        await original(self)

    monkeypatch.setattr(Dispatcher, "run", run)
    return runs


async def inner_cancel() -> None:
    """A CancelledError coming up from something the worker awaited (a task of its own cancelled),
    not from the daemon's stop."""
    inner = asyncio.get_running_loop().create_future()
    inner.cancel()
    await inner


async def test_a_worker_ended_by_a_cancel_of_its_own_is_logged_and_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = ends_once(monkeypatch, inner_cancel)
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Sent after the restart"))).error is None
            await smsc.wait_for(1)
            assert runs[0] >= 2
            crashed = events(logs, "worker.crashed")
            assert [e["worker"] for e in crashed] == ["dispatcher"]
            assert "cancellation inside it" in crashed[0]["error"]
            state = gw.daemon.supervisor.snapshot()["dispatcher"]
            assert state["state"] == "running" and state["restarts"] == 1


async def test_the_watchdogs_own_fault_is_logged_and_it_looks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Supervisor.stalled
    looks = [0]

    def stalled(self: Supervisor) -> list[str]:
        looks[0] += 1
        if looks[0] == 1:
            raise RuntimeError("a fault in the watchdog's look")
        return original(self)

    monkeypatch.setattr(Supervisor, "stalled", stalled)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a look every 0.1 s
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            await gw.until(lambda: gw.daemon.supervisor.watchdog_ticks >= 2)
            assert [e["error"] for e in events(logs, "watchdog.failed")] == [
                "RuntimeError: a fault in the watchdog's look"
            ]
            # Its fault cancelled no worker: mail is still taken and sent.
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Still sent"))).error is None
            await smsc.wait_for(1)
            assert not gw.task.done()


class Fatal(BaseException):
    """An error no `except Exception` takes (as a library's SystemExit-like one): it escapes the
    worker's supervision and ends the supervisor's TaskGroup."""


async def fatal() -> None:
    raise Fatal("beyond the supervisor")


async def test_the_supervisor_ending_stops_the_daemon_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ends_once(monkeypatch, fatal)
    with structlog.testing.capture_logs() as logs, pytest.raises(DaemonTaskLost, match="supervisor ended"):
        async with HappySMSC() as smsc:
            cfg = make_config(tmp_path, smsc_port=smsc.port)
            async with running_gateway(cfg) as gw:
                await asyncio.wait({gw.task}, timeout=30)
                assert gw.task.done()  # it stopped: not left listening with every worker cancelled
    lost = events(logs, "daemon.task_lost")
    assert [e["task"] for e in lost] == ["supervisor"]
    assert "Fatal" in lost[0]["error"]
    # The stop ran to its end: the store drained and closed, the status file removed.
    assert events(logs, "daemon.stopped")
    assert not (cfg.state_dir / "status.json").exists()


async def test_a_stop_with_a_panel_request_open_stops_taking_mail_at_once(tmp_path: Path) -> None:
    # The relay port in a worker process, as shipped: the daemon's "closing" does not reach it, its
    # listener's close (and the worker's stop) does.
    async with HappySMSC() as smsc:
        text = worker_config_text(tmp_path, smsc.port, free_port(), 1, extra=WEB)
        cfg = parse_config(text, base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await stop_with_a_request_open(gw)


async def stop_with_a_request_open(gw: Running) -> None:
    # A request the panel is still reading (its body not all sent): its stop waits for it.
    _reader, writer = await asyncio.open_connection("127.0.0.1", gw.daemon.web.port)
    writer.write(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nemail=")
    await writer.drain()
    await asyncio.sleep(0.2)
    gw.stop.set()
    await gw.until(lambda: gw.daemon.gate.closing)
    began = time.monotonic()
    taken = []
    while time.monotonic() - began < 3 and not gw.task.done():
        try:
            res = await gw.send(mail(f"601123456@{DOMAIN}", f"After the stop {len(taken)}"))
        except OSError:  # the port closed: refused, as it should be
            res = None
        if res is not None and res.error is None:
            taken.append(round(time.monotonic() - began, 1))
        await asyncio.sleep(0.2)
    assert taken == []  # was: 250 to each of them, for the 10 s the panel's stop waited
    writer.close()
