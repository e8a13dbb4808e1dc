"""/healthz under load: it answers without a login, and each request wrote its heartbeat row, so
1,400 requests a second queued 1,400 writes a second on the store's one writer and tripled the
relay port's reply time. Real HTTP against the real panel; the store's writes are counted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.web import metrics
from gateway.web.gate import ConnectionLimits
from tests.test_web_limits import panel

ROOMY = ConnectionLimits(total=128, per_address=128, request_seconds=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_of_health_checks_makes_one_write_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with panel(tmp_path, "", ROOMY) as (server, port):
        web = server.web
        store = web.store
        heartbeats: list[str] = []
        real = store.write

        async def counted(work: Any, *args: Any, **kw: Any) -> Any:
            if getattr(work, "__name__", "") == "heartbeat":
                heartbeats.append(work.__qualname__)
            return await real(work, *args, **kw)

        monkeypatch.setattr(store, "write", counted)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            burst = await asyncio.gather(*(c.get("/healthz") for _ in range(50)))
            assert len(heartbeats) <= 3, len(heartbeats)  # one a second, on a slow machine a few
            clock = Clock()
            web.heartbeat = metrics.Heartbeat(clock=clock)
            assert (await c.get("/healthz")).text == "ok\n"
            heartbeats.clear()
            clock.now += 0.9
            assert (await c.get("/healthz")).text == "ok\n" and heartbeats == []
            clock.now += 0.2  # past a second: written again
            assert (await c.get("/healthz")).text == "ok\n" and len(heartbeats) == 1
        row = store.db.conn.execute(
            "SELECT 1 FROM billing_state WHERE key = ?", (metrics.HEARTBEAT_KEY,)
        ).fetchone()
    assert [(r.status_code, r.text) for r in burst] == [(200, "ok\n")] * 50
    assert row is not None  # a real write, as before
