"""The panel's server task, against the real daemon and the real uvicorn server: its end while the
daemon runs (uvicorn told to exit, an error out of its loop) was silent, with /healthz and /metrics
gone and `smsgw status` still saying healthy. It is a vital task now: logged, the daemon stopped in
order, exit status 1 for systemd. And uvicorn no longer takes the daemon's signals.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.vital import DaemonTaskLost
from gateway.web.server import _Server
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


async def until_done(task: asyncio.Task[None]) -> None:
    await asyncio.wait({task}, timeout=30)
    assert task.done()  # the daemon stopped: not left running without its panel


async def test_the_panel_server_ending_stops_the_daemon_in_order(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs, pytest.raises(DaemonTaskLost, match="web ended: returned"):
        async with HappySMSC() as smsc:
            cfg = make_config(tmp_path, smsc_port=smsc.port, extra=WEB)
            async with running_gateway(cfg) as gw:
                assert gw.daemon.web is not None
                gw.daemon.web.server.should_exit = True  # uvicorn's serve() returns, as on its own exit
                await until_done(gw.task)
    assert [e["task"] for e in events(logs, "daemon.task_lost")] == ["web"]
    assert events(logs, "daemon.stopped")
    assert not (cfg.state_dir / "status.json").exists()


async def test_an_error_out_of_the_panel_server_stops_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _Server.on_tick
    ticks = [0]

    async def on_tick(self: _Server, counter: int) -> bool:
        ticks[0] += 1
        if ticks[0] > 3:
            raise RuntimeError("a fault in uvicorn's loop")
        return await original(self, counter)

    monkeypatch.setattr(_Server, "on_tick", on_tick)
    with structlog.testing.capture_logs() as logs, pytest.raises(DaemonTaskLost, match="a fault in uvicorn"):
        async with HappySMSC() as smsc:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw:
                await until_done(gw.task)
    lost = events(logs, "daemon.task_lost")
    assert [e["task"] for e in lost] == ["web"]
    assert "RuntimeError: a fault in uvicorn's loop" in lost[0]["error"]
    assert events(logs, "daemon.stopped")


async def test_a_stop_of_the_daemon_is_no_lost_panel(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw:
                assert gw.daemon.web is not None
    assert gw.task.done() and gw.task.exception() is None
    assert events(logs, "daemon.task_lost") == []


async def test_the_panel_leaves_the_daemons_signals_alone(tmp_path: Path) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    async with HappySMSC() as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw:
            assert gw.daemon.web is not None and gw.daemon.web.server.started
            during = {sig: signal.getsignal(sig) for sig in before}
    assert during == before  # uvicorn's handle_exit had taken both while the panel ran
