"""The panel's share per address and uvicorn's limit on running requests, against the real server.

Everyone behind an office's NAT shares one address: a few stalled sockets there held the address's
whole share, and the office's browsers were refused until the deadline closed them (10 s). A client
pipelining requests held two running requests per connection for a moment (the one answered and
the next), so that a cap full of them reached uvicorn's `limit_concurrency` and another client got
503; and uvicorn logged a warning for every request it refused or did not understand.

Real sockets and real HTTP clients against uvicorn with the panel's protocol on 127.0.0.1, on
asyncio's loop and on uvloop's (the daemon's); the helpers are tests/test_web_limits.py's and
tests/test_web_stalled.py's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from gateway.web.gate import ConnectionLimits
from gateway.web.server import WebServer
from tests.test_web_limits import HALF_A_POST, LOOPS, dial, panel, seconds_until_closed
from tests.test_web_stalled import never_reads, reads_slowly
from tests.web_helpers import ADMIN, PASSWORD, csrf_of

SHIPPED = ConnectionLimits()  # 24 per address, 10 s to ask
# Longer than a connection of an address at its share must stand idle to make room (1 s as shipped).
IDLE = 1.3
OFFICE = "127.0.0.3"


def silent(port: int, source: str) -> socket.socket:
    return dial(port, source)


def half_a_post(port: int, source: str) -> socket.socket:
    return dial(port, source, HALF_A_POST)


def counted(server: WebServer, address: str) -> int:
    return sum(1 for key in server.gate.open.values() if key == address)


async def until_counted(server: WebServer, address: str, n: int) -> None:
    """The loop has taken the connections (under load it may not have yet)."""
    for _ in range(500):
        if counted(server, address) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{counted(server, address)} of {n} connections from {address} taken")


def office_login(port: int, source: str) -> tuple[list[int], float, str]:
    """An admin's browser behind the office address: the login page and the login, on one
    connection. (status codes, seconds taken, the error if the panel would not answer)"""
    start, codes, error = time.monotonic(), [], ""
    transport = httpx.HTTPTransport(local_address=source)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", transport=transport, timeout=10) as c:
            page = c.get("/login")
            codes.append(page.status_code)
            r = c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)})
            codes.append(r.status_code)
    except httpx.HTTPError as exc:
        error = repr(exc)
    return codes, time.monotonic() - start, error


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("stall", [silent, half_a_post, never_reads], ids=["silent", "half_a_post", "unread"])
def test_stalled_sockets_of_an_address_make_room_for_a_browser_behind_it(
    tmp_path: Path,
    run: Callable[[Coroutine[Any, Any, None]], None],
    stall: Callable[[int, str], socket.socket],
) -> None:
    # 24 sockets from the office's address that send nothing, half a request, or read no answer:
    # the next connection from there was closed at once, for as long as they stayed (10 s each).
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, "", SHIPPED) as (server, port):
                held = await asyncio.to_thread(
                    lambda: [stall(port, OFFICE) for _ in range(SHIPPED.per_address)]
                )
                try:
                    await until_counted(server, OFFICE, SHIPPED.per_address)
                    await asyncio.sleep(IDLE)  # idle, as the kernel counts it
                    codes, took, error = await asyncio.to_thread(office_login, port, OFFICE)
                    after = counted(server, OFFICE)
                finally:
                    for s in held:
                        s.close()
        assert error == "", error
        assert codes == [200, 303] and took < 3, (codes, took)
        assert after <= SHIPPED.per_address, after  # the share still holds: one stalled one made room
        made_room = [e for e in logs if e.get("limit") == "per_address"]
        assert made_room and made_room[0]["made_room"] is True, made_room

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_an_address_whose_connections_all_work_keeps_its_share(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Downloads read slowly but steadily are work, however long they last: a newcomer from their
    # address is refused rather than cut one of them.
    limits = ConnectionLimits(total=8, per_address=3, request_seconds=10.0)

    async def body() -> None:
        async with panel(tmp_path, "", limits) as (server, port):
            with ThreadPoolExecutor(limits.per_address) as pool:
                loop = asyncio.get_running_loop()
                reading = [
                    loop.run_in_executor(pool, reads_slowly, port, 150) for _ in range(limits.per_address)
                ]
                await until_counted(server, "127.0.0.1", limits.per_address)
                await asyncio.sleep(IDLE)  # longer than an idle one would last
                over = await asyncio.to_thread(lambda: seconds_until_closed(dial(port, "127.0.0.1")))
                read = await asyncio.gather(*reading)
        assert over < 0.5, over
        assert [n for n, _ in read] == [150] * limits.per_address, read

    run(body())


# ---- uvicorn's limit on running requests, and what it logs -----------------------------------------


@contextmanager
def uvicorn_warnings() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn's protocol logs at WARNING, whatever another test made of its loggers."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("uvicorn.error")
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


PAGE = b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n"


def pipelines(port: int, source: str, stop: threading.Event, batch: int = 20) -> dict[int, int]:
    """Asks for `batch` pages at once, reads every answer, and again, on one connection, until
    `stop`: answers by status (a 503 closes the connection, and ends this)."""
    got = {200: 0, 503: 0}
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        while not stop.is_set():
            s.sendall(PAGE * batch)
            data = b""
            while data.count(b"</html>") + data.count(b"Service Unavailable") < batch:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            got[200] += data.count(b"HTTP/1.1 200")
            got[503] += data.count(b"HTTP/1.1 503")
            if got[503] or not chunk:
                break
    return got


def browses(port: int, pages: int) -> list[int | str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        codes: list[int | str] = []
        for _ in range(pages):
            try:
                codes.append(c.get("/login").status_code)
            except httpx.HTTPError as exc:
                codes.append(repr(exc))
        return codes


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_pipelining_clients_hold_one_running_request_per_connection(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Each pipelining connection counted twice for a moment (its answered request still finishing,
    # the next one started): a cap full of them went over `limit_concurrency`, and the requests
    # past it, an admin's among them, were answered 503. uvicorn's limit is set here just above
    # the cap (shipped: twice the cap), so that one running request per connection keeps under it
    # and two do not.
    limits = ConnectionLimits(total=8, per_address=8, request_seconds=10.0)
    pipeliners = limits.total - 1  # and the admin's browser

    async def body() -> None:
        async with panel(tmp_path, "", limits) as (server, port):
            server.config.limit_concurrency = limits.total + 1  # read by each connection as it comes
            stop = threading.Event()
            with ThreadPoolExecutor(pipeliners) as pool:
                loop = asyncio.get_running_loop()
                clients = [
                    loop.run_in_executor(pool, pipelines, port, f"127.0.0.{10 + i}", stop)
                    for i in range(pipeliners)
                ]
                await asyncio.sleep(0.3)
                try:
                    codes = await asyncio.to_thread(browses, port, 60)
                finally:
                    stop.set()
                got = await asyncio.gather(*clients)
        assert [g[503] for g in got] == [0] * pipeliners, got
        assert all(g[200] > 20 for g in got), got  # they did pipeline, all along
        assert codes == [200] * 60, codes

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_requests_refused_over_the_limit_are_logged_once_a_second(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # "Exceeded concurrency limit." was a warning line for every refused request: a client asking
    # again and again wrote the log as fast as it liked. uvicorn's limit is set below the
    # connections here, so that every request is refused. The two connections that fill it send no
    # request: the request deadline would close them (1.5 s in LIMITS) while a loaded machine is
    # still making the 61 requests, and the last one was answered 200.
    limits = ConnectionLimits(total=8, per_address=3, request_seconds=60)

    async def body() -> None:
        with capture_logs() as logs, uvicorn_warnings() as records:
            async with panel(tmp_path, limits=limits) as (server, port):
                server.config.limit_concurrency = 2
                held = await asyncio.to_thread(lambda: [dial(port, "127.0.0.2") for _ in range(2)])
                await until_counted(server, "127.0.0.2", 2)

                def clients() -> tuple[list[bytes], float]:
                    answers, start = [], time.monotonic()
                    for i in range(61):
                        if i == 60:
                            burst = time.monotonic() - start
                            time.sleep(1.1)  # the next line, a second later, counts those held back
                        with dial(port, f"127.0.0.{10 + i % 5}", PAGE) as s:
                            answers.append(s.recv(65536).split(b"\r\n", 1)[0])
                    return answers, burst

                try:
                    answers, burst = await asyncio.to_thread(clients)
                finally:
                    for s in held:
                        s.close()
        assert answers == [b"HTTP/1.1 503 Service Unavailable"] * 61, set(answers)
        assert [r.getMessage() for r in records] == []
        lines = [e for e in logs if e.get("limit") == "requests"]
        assert 2 <= len(lines) <= burst + 2, (burst, lines)  # a line a second, and the last one
        assert lines[0]["suppressed"] == 0 and lines[0]["cap"] == 2
        assert len(lines) + sum(e["suppressed"] for e in lines) == 61, lines

    run(body())


def test_pipelined_upgrade_requests_are_logged_once_a_second(tmp_path: Path) -> None:
    # An upgrade the panel does not do (h2c) made uvicorn warn twice per request, pipelined or not.
    ask = b"GET /login HTTP/1.1\r\nHost: panel\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" * 200

    async def body() -> None:
        with capture_logs() as logs, uvicorn_warnings() as records:
            async with panel(tmp_path) as (_server, port):
                start = time.monotonic()

                def client() -> int:
                    with dial(port, "127.0.0.2", ask) as s:
                        data = b""
                        while data.count(b"</html>") < 200:
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                        return data.count(b"HTTP/1.1 200")

                answered = await asyncio.to_thread(client)
                took = time.monotonic() - start
        assert answered == 200
        assert [r.getMessage() for r in records] == []
        lines = [e for e in logs if e["event"] == "web.http_warning"]
        per_kind = Counter(e["uvicorn"] for e in lines)
        assert per_kind["Unsupported upgrade request."] >= 1, lines
        assert max(per_kind.values()) <= took + 1, (per_kind, took)  # a line per kind a second

    asyncio.run(body())
