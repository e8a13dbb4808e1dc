"""An address at its share of the panel's connections: a trickling request (head or body) makes room,
and a browser refused is told why.

Two dozen connections from an office's address that each sent a header line every 0.4 s were never
idle (`stalled_seconds`), so nothing made room for the office's browsers until the request deadline
closed them, and the refused connection was reset: the browser showed an empty response. Real
sockets and a real HTTP client against uvicorn with the panel's protocol on 127.0.0.1, on asyncio's
loop and on uvloop's (the daemon's); the helpers are tests/test_web_limits.py's and
tests/test_web_address_cap.py's.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from gateway.web.gate import ConnectionLimits
from tests.certs import make_cert_pair
from tests.test_web_address_cap import OFFICE, SHIPPED, counted, office_login, until_counted
from tests.test_web_limits import HALF_A_HEAD, LOOPS, dial, panel, seconds_until_closed
from tests.test_web_stalled import reads_slowly


def trickles(port: int, source: str, stop: threading.Event) -> None:
    """A request head that never ends: a header line every 0.4 s, until `stop` or the panel closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(HALF_A_HEAD)
        while not stop.wait(0.4):
            try:
                s.sendall(b"X-Trickle: 1\r\n")
            except OSError:
                return


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_trickling_requests_of_an_address_make_room_for_a_browser_behind_it(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    async def body() -> None:
        stop = threading.Event()
        with capture_logs() as logs:
            async with panel(tmp_path, "", SHIPPED) as (server, port):
                with ThreadPoolExecutor(SHIPPED.per_address) as pool:
                    loop = asyncio.get_running_loop()
                    held = [
                        loop.run_in_executor(pool, trickles, port, OFFICE, stop)
                        for _ in range(SHIPPED.per_address)
                    ]
                    try:
                        await until_counted(server, OFFICE, SHIPPED.per_address)
                        await asyncio.sleep(SHIPPED.head_seconds + 0.3)  # heads that long are late
                        codes, _took, error = await asyncio.to_thread(office_login, port, OFFICE)
                        after = counted(server, OFFICE)
                    finally:
                        stop.set()
                    await asyncio.gather(*held)
        assert error == "" and codes == [200, 303], (codes, error)
        assert after <= SHIPPED.per_address, after
        made_room = [e for e in logs if e.get("limit") == "per_address"]
        assert made_room and made_room[0]["made_room"] is True, made_room

    run(body())


def keeps_trickling(port: int, source: str, stop: threading.Event) -> None:
    """`trickles`, connecting again each time the panel closes it (or refuses it), until `stop`."""
    while not stop.is_set():
        try:
            trickles(port, source, stop)
        except OSError:
            stop.wait(0.05)


def page_status(port: int, source: str) -> str:
    """A browser's request on a new connection from `source`: the answer's status line, or what
    became of it."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
            s.sendall(b"GET /login HTTP/1.1\r\nHost: panel\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    except OSError as exc:
        return repr(exc)
    return answer.split(b"\r\n", 1)[0].decode() or "closed without an answer"


async def browser_among_tricklers(
    tmp_path: Path, trickle: Callable[[int, str, threading.Event], None], clients: int, pages: int, gap: float
) -> tuple[list[str], tuple[list[int], float, str], int]:
    """`clients` at the office's address each running `trickle` (connecting again when closed); once
    their requests are late, `pages` page loads from the same address `gap` seconds apart and a login:
    their statuses, the login's (codes, time, error), and how many of the address's connections count."""
    stop = threading.Event()
    async with panel(tmp_path, "", SHIPPED) as (server, port):
        with ThreadPoolExecutor(clients) as pool:
            loop = asyncio.get_running_loop()
            held = [loop.run_in_executor(pool, trickle, port, OFFICE, stop) for _ in range(clients)]
            try:
                await until_counted(server, OFFICE, SHIPPED.per_address)
                await asyncio.sleep(SHIPPED.head_seconds + 0.3)  # requests that long are late
                statuses = []
                for _ in range(pages):
                    statuses.append(await asyncio.to_thread(page_status, port, OFFICE))
                    await asyncio.sleep(gap)
                login = await asyncio.to_thread(office_login, port, OFFICE)
                share = [c for c, k in server.gate.open.items() if k == OFFICE]
                counted_now = len([c for c in share if c not in server.gate.waiting])
            finally:
                stop.set()
            await asyncio.gather(*held)
    return statuses, login, counted_now


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_browser_wins_its_place_from_trickling_requests_that_reconnect(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Forty such clients at one address, each connecting again as soon as it is closed: each one
    # closed to make room came back at once, and a browser's new connection behind the address won
    # a place about one time in two (503 the other). A newcomer whose head comes whole now takes the
    # place of one still trickling.
    async def body() -> None:
        clients = SHIPPED.per_address + 16
        statuses, _login, counted_now = await browser_among_tricklers(
            tmp_path, keeps_trickling, clients, 12, 0.2
        )
        assert statuses == ["HTTP/1.1 200 OK"] * 12, statuses
        assert counted_now <= SHIPPED.per_address, counted_now

    run(body())


# A whole head, then a form's body a byte at a time.
BODY_HEAD = (
    b"POST /login HTTP/1.1\r\nHost: panel\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n\r\n"
)


def keeps_trickling_a_body(port: int, source: str, stop: threading.Event) -> None:
    """A request whose body never ends, a byte every 0.4 s, connecting again each time the panel
    closes it (or refuses it), until `stop`."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
                s.sendall(BODY_HEAD)
                while not stop.wait(0.4):
                    s.sendall(b"a")
        except OSError:
            stop.wait(0.05)


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_browser_wins_its_place_from_requests_trickling_their_bodies(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Only a head not whole counted as late: 28 such clients at one address, in the body of their
    # request (never idle), had every browser behind it answered 503 until they stopped.
    async def body() -> None:
        clients = SHIPPED.per_address + 4
        statuses, (codes, _took, error), counted_now = await browser_among_tricklers(
            tmp_path, keeps_trickling_a_body, clients, 6, 0.3
        )
        assert statuses == ["HTTP/1.1 200 OK"] * 6, statuses
        assert error == "" and codes == [200, 303], (codes, error)
        assert counted_now <= SHIPPED.per_address, counted_now

    run(body())


# Heads given long to come: the address's trickling connections stay in their places.
WAITS = ConnectionLimits(total=16, per_address=3, head_seconds=30.0)


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_waiting_newcomer_closed_without_its_head_is_logged_with_the_time_it_had(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Over its address's share, a newcomer has `stalled_seconds` for its head; closed at that
    # deadline, it was logged as having had `request_seconds`, ten times as long.
    async def body() -> None:
        stop = threading.Event()
        with capture_logs() as logs:
            async with panel(tmp_path, "", WAITS) as (server, port):
                with ThreadPoolExecutor(WAITS.per_address) as pool:
                    loop = asyncio.get_running_loop()
                    shares = range(WAITS.per_address)
                    held = [loop.run_in_executor(pool, trickles, port, OFFICE, stop) for _ in shares]
                    try:
                        await until_counted(server, OFFICE, WAITS.per_address)
                        newcomer = await asyncio.to_thread(dial, port, OFFICE, HALF_A_HEAD)
                        await asyncio.to_thread(seconds_until_closed, newcomer)
                    finally:
                        stop.set()
                    await asyncio.gather(*held)
        late = [e for e in logs if e.get("limit") == "request_time"]
        assert [e["seconds"] for e in late] == [WAITS.stalled_seconds], late

    run(body())


# An address's share taken by downloads read slowly but steadily: work, which no newcomer cuts.
BUSY = ConnectionLimits(total=8, per_address=3, request_seconds=10.0)


def refused_answer(port: int, verify: ssl.SSLContext | None) -> httpx.Response:
    scheme = "http" if verify is None else "https"
    with httpx.Client(base_url=f"{scheme}://127.0.0.1:{port}", verify=verify or True, timeout=10) as c:
        return c.get("/login")


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_connection_over_the_share_is_told_why_and_when_to_come_back(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None], tls: bool
) -> None:
    cert, key = make_cert_pair(tmp_path / "tls")
    extra = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n' if tls else ""
    verify = ssl.create_default_context(cafile=str(cert)) if tls else None

    async def body() -> None:
        async with panel(tmp_path, extra, BUSY) as (server, port):
            with ThreadPoolExecutor(BUSY.per_address) as pool:
                loop = asyncio.get_running_loop()
                reading = [
                    loop.run_in_executor(pool, _reads_slowly, port, verify) for _ in range(BUSY.per_address)
                ]
                await until_counted(server, "127.0.0.1", BUSY.per_address)
                await asyncio.sleep(1.3)  # longer than an idle one would last
                refused = await asyncio.to_thread(refused_answer, port, verify)
                await asyncio.gather(*reading)
            for _ in range(200):
                if not server.gate.refusing:
                    break
                await asyncio.sleep(0.01)
            assert server.gate.refusing == 0  # every refusal ended, and was uncounted
        assert refused.status_code == 503, refused
        assert refused.headers["retry-after"] == "5"
        assert refused.headers["content-type"] == "text/html; charset=utf-8"
        text = " ".join(refused.text.split())
        assert "too many connections to the panel from your address (127.0.0.1)" in text, text
        assert "Try again in a few seconds" in text

    run(body())


def _reads_slowly(port: int, verify: ssl.SSLContext | None) -> int:
    """tests/test_web_stalled.py's slow reader, or over TLS a download read as slowly."""
    if verify is None:
        read, _ = reads_slowly(port, 150)
        return read
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with verify.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n" * 150)
        answer, start = b"", time.monotonic()
        while answer.count(b"</html>") < 150 and time.monotonic() - start < 8:
            chunk = s.recv(2048)
            if not chunk:
                break
            answer += chunk
            time.sleep(0.04)
        return answer.count(b"</html>")
