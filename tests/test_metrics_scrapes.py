"""Scrapes of /metrics share one count of the store: each scrape queued a full count of its own on
the panel's one reader thread, and left it there after its client hung up, so a burst of scrapes
held the dashboard and every search behind them (20 s for 400 at 60k messages; minutes at a
million). Real HTTP against the real panel; the count itself is timed by the real reader thread."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from gateway.web import counts
from gateway.web.gate import ConnectionLimits
from tests.test_web_limits import panel

ROOMY = ConnectionLimits(total=128, per_address=128, request_seconds=10.0)  # every scrape gets in


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each count of the store, as a slow one (a big database): its start time."""
    started: list[float] = []
    real = counts.count

    def slow(conn: sqlite3.Connection) -> counts.StoreCounts:
        started.append(time.monotonic())
        time.sleep(0.3)
        return real(conn)

    monkeypatch.setattr(counts, "count", slow)
    return started


async def test_a_burst_of_scrapes_that_hang_up_costs_one_count(tmp_path: Path, counted: list[float]) -> None:
    async with panel(tmp_path, "", ROOMY) as (_server, port):

        def burst() -> None:
            for _ in range(40):  # each asks and hangs up at once
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: panel\r\n\r\n")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()  # a reset

        await asyncio.to_thread(burst)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            start = time.monotonic()
            answers = await asyncio.gather(*(client.get("/metrics") for _ in range(10)))
            took = time.monotonic() - start
        assert all(a.status_code == 200 and "smsgw_messages_total" in a.text for a in answers)
        assert len(counted) <= 2, f"{len(counted)} counts for one burst of scrapes"
        assert took < 2, took  # not behind 50 counts of 0.3 s


async def test_counts_are_read_again_once_they_are_old(
    tmp_path: Path, counted: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(counts, "FRESH_SECONDS", 0.5)
    async with panel(tmp_path, "", ROOMY) as (_server, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/metrics")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            assert len(counted) == 1
            await asyncio.sleep(0.6)
            assert (await client.get("/metrics")).status_code == 200
            assert len(counted) == 2
