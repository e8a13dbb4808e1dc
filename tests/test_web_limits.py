"""The panel within limits: its connections (how many, how slow) and what its pages cost the daemon.

Connections go through the real server (uvicorn with the panel's protocol, bound to 127.0.0.1) on
asyncio's loop and on uvloop's (the daemon's), with raw sockets for the slow clients: a client
that holds a connection without finishing its request must not hold it for long, and enough of
them must not use up the daemon's descriptors. The pages' queries are checked on a fresh store,
as installations have it: the store never runs ANALYZE, so SQLite plans without statistics; those
checks have a module of their own (test_web_limits_pages.py), their helpers staying here.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from structlog.testing import capture_logs

from gateway.web.app import WebContext
from gateway.web.gate import ConnectionLimits
from gateway.web.refusal import REFUSAL_SECONDS
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.web_helpers import (
    ADMIN,
    PASSWORD,
    csrf_of,
    panel_store,
    web_context,
)
from tests.web_helpers import web as web  # the fixture

LIMITS = ConnectionLimits(total=8, per_address=3, request_seconds=1.5)
HALF_A_POST = (
    b"POST /login HTTP/1.1\r\nHost: panel\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\ncsrf="
)
HALF_A_HEAD = b"GET / HTTP/1.1\r\nHost: panel\r\n"
CLIENT_HELLO_START = b"\x16\x03\x01\x00\xc8\x01\x00"  # a TLS record of 200 bytes, its first 2
LOOPS: list[Callable[[Coroutine[Any, Any, None]], None]] = [asyncio.run, uvloop.run]


@asynccontextmanager
async def panel(
    tmp_path: Path, extra: str = "", limits: ConnectionLimits = LIMITS
) -> AsyncIterator[tuple[WebServer, int]]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n' + extra)
    server = WebServer(web, limits)
    port = await server.start()
    try:
        yield server, port
    finally:
        await server.stop()
        web.counts.close()
        store.close()


def dial(port: int, source: str, data: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    if data:
        s.sendall(data)
    return s


def seconds_until_closed(s: socket.socket, since: float | None = None) -> float:
    """Blocks until the server closes the connection (EOF or reset): the seconds from `since` (or
    from now). 10 s at most: then the socket's timeout raises, and the test fails naming it."""
    start = time.monotonic() if since is None else since
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    finally:
        s.close()
    return time.monotonic() - start


def open_now(s: socket.socket) -> bool:
    """Still open: nothing to read and no EOF."""
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def log_in(base: str, verify: Any = True, pages: int = 0) -> httpx.Response:
    """The admin's login; then `pages` pages on the same connection, spread over more than the
    deadline: each answer gives the next request on the connection its own time."""
    with httpx.Client(base_url=base, verify=verify) as c:
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": token})
        assert r.status_code == 303, r.text
        for _ in range(pages):
            time.sleep(LIMITS.request_seconds * 0.6)
            assert c.get("/").status_code == 200
        return r


async def released(server: WebServer) -> None:
    """Every connection let go, once the server has heard the last client's close."""
    for _ in range(100):
        if not server.gate.open:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still counted: {list(server.gate.open.values())}")


def bites(logs: list[dict[str, Any]]) -> set[str]:
    return {e["limit"] for e in logs if e["event"] == "web.limit_hit"}


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_slow_clients_are_closed_after_the_deadline_and_an_admin_still_logs_in(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # 4,066 sockets with half a POST each held every descriptor of the daemon for as long as they
    # liked, and SMTP intake stopped. Now one address holds `per_address` at most (the next is
    # closed once its head is in, unless it takes the place of one whose head is still coming:
    # gateway/web/gate.py) and none of them longer than the deadline.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):

                def clients() -> tuple[float, list[bool], int, list[float]]:
                    opened = time.monotonic()
                    held = [dial(port, "127.0.0.2", data) for data in (HALF_A_POST, HALF_A_HEAD, b"")]
                    time.sleep(0.1)  # read by the panel
                    held.append(dial(port, "127.0.0.2", HALF_A_POST))  # in place of the half a head
                    time.sleep(0.1)
                    over = seconds_until_closed(dial(port, "127.0.0.2", HALF_A_POST))
                    # (the one refused may still wait over the share for its close: not counted)
                    share = [c for c in server.gate.open if c not in server.gate.waiting]
                    alive, counted = [open_now(s) for s in held], len(share)
                    log_in(f"http://127.0.0.1:{port}")  # from another address, while they wait
                    held.pop(1).close()  # (reset by the panel)
                    closed = [seconds_until_closed(s, opened) for s in held]
                    log_in(f"http://127.0.0.1:{port}", pages=3)
                    return over, alive, counted, closed

                over, alive, counted, closed = await asyncio.to_thread(clients)
                await released(server)
        assert over < LIMITS.request_seconds / 2, over
        assert alive == [True, False, True, True] and counted == LIMITS.per_address, (alive, counted)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        assert {"per_address", "request_time"} <= bites(logs)

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_slow_clients_from_many_addresses_stay_under_the_total_and_make_room(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # One each from more addresses than the total: the panel holds the total at most, the oldest
    # waiting one making room for a newcomer, so that an admin still gets in.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):

                def clients() -> tuple[int, list[bool]]:
                    held = []
                    for i in range(LIMITS.total + 4):
                        held.append(dial(port, f"127.0.0.{10 + i}", HALF_A_POST))
                        # Its bytes read before the next comes: a connection not heard from yet goes
                        # first (a browser's spare one), whatever its age.
                        time.sleep(0.03)
                    time.sleep(0.2)
                    counted = len(server.gate.open)
                    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
                        token = csrf_of(c.get("/login").text)
                        r = c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": token})
                        assert r.status_code == 303, r.text
                    alive = [open_now(s) for s in held]
                    for s in held:
                        seconds_until_closed(s)
                    return counted, alive

                counted, alive = await asyncio.to_thread(clients)
        assert counted == LIMITS.total
        assert alive[:4] == [False] * 4  # the oldest made room
        assert "connections" in bites(logs)
        made_room = [e for e in logs if e.get("limit") == "connections"]
        assert made_room[0]["made_room"] is True

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_tls_handshake_that_never_comes_is_counted_and_timed(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Under uvicorn's own TLS a connection that never sent its ClientHello was not the panel's to
    # count until the handshake ended (asyncio's default: 60 s): a flood of them was uncounted.
    cert, key = make_cert_pair(tmp_path / "tls")
    extra = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'

    async def body() -> None:
        async with panel(tmp_path, extra) as (server, port):

            def clients() -> tuple[float, list[bool], list[float]]:
                opened = time.monotonic()
                held = [dial(port, "127.0.0.2") for _ in range(LIMITS.per_address)]
                over = seconds_until_closed(dial(port, "127.0.0.2"))
                alive = [open_now(s) for s in held]
                log_in(f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=str(cert)))
                return over, alive, [seconds_until_closed(s, opened) for s in held]

            over, alive, closed = await asyncio.to_thread(clients)
            await released(server)
        # Refused at once, given only the time for a handshake to be told why (gateway/web/refusal.py).
        assert over < REFUSAL_SECONDS + 0.5, over
        assert alive == [True] * LIMITS.per_address
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed

    run(body())


# ---- what a page costs: the account's opt-outs and searches -------------------------------------


@contextmanager
def statements(web: WebContext) -> Iterator[list[str]]:
    """The SQL run on the loop's connection and on the panel's reader (its thread's own)."""
    seen: list[str] = []
    conn = web.store.db.conn
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


async def trace_reader(web: WebContext, on: bool, seen: list[str]) -> None:
    await web.counts.run(lambda conn: conn.set_trace_callback(seen.append if on else None))


def plan(web: WebContext, sql: str) -> str:
    return " | ".join(str(r[3]) for r in web.store.db.conn.execute("EXPLAIN QUERY PLAN " + sql))


# ---- a connection that never sent a byte is no slow client -------------------------------------


def quiet_and_bitten(logs: list[dict[str, Any]], quiet: list[str]) -> tuple[list[str], set[str]]:
    """What was said above DEBUG of the `quiet` addresses, and the addresses `request_time` named."""
    loud = [
        f"{e['event']} {e.get('limit', '')}"
        for e in logs
        if e.get("address") in quiet and e.get("log_level") != "debug"
    ]
    return loud, {e["address"] for e in logs if e.get("limit") == "request_time"}


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_spare_connection_is_closed_quietly_and_a_stalled_request_is_logged(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Browsers open a spare connection and never send on it: closed at the deadline, it was logged
    # as a slow client (`web.limit_hit request_time`), as was a keep-alive connection after its
    # answer. One that sent part of its request and stalled is still a limit hit.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):

                def clients() -> list[float]:
                    opened = time.monotonic()
                    spare = dial(port, "127.0.0.5")
                    answered = dial(port, "127.0.0.6", b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n")
                    stalled = dial(port, "127.0.0.7", HALF_A_HEAD)
                    return [seconds_until_closed(s, opened) for s in (spare, answered, stalled)]

                closed = await asyncio.to_thread(clients)
                await released(server)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        loud, bitten = quiet_and_bitten(logs, ["127.0.0.5", "127.0.0.6"])
        assert loud == [] and bitten == {"127.0.0.7"}, (loud, bitten)

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_on_tls_a_preconnection_is_closed_quietly_and_a_stalled_handshake_is_logged(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # A browser's spare HTTPS connection has its handshake done and sends nothing after it; one that
    # sends nothing at all is no slow client either. Part of a ClientHello, then nothing, is.
    cert, key = make_cert_pair(tmp_path / "tls")
    extra = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
    trusted = ssl.create_default_context(cafile=str(cert))

    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, extra) as (server, port):

                def clients() -> list[float]:
                    opened = time.monotonic()
                    silent = dial(port, "127.0.0.5")
                    spare = trusted.wrap_socket(dial(port, "127.0.0.6"), server_hostname="127.0.0.1")
                    stalled = dial(port, "127.0.0.7", CLIENT_HELLO_START)
                    return [seconds_until_closed(s, opened) for s in (silent, spare, stalled)]

                closed = await asyncio.to_thread(clients)
                await released(server)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        loud, bitten = quiet_and_bitten(logs, ["127.0.0.5", "127.0.0.6"])
        assert loud == [] and bitten == {"127.0.0.7"}, (loud, bitten)

    run(body())
