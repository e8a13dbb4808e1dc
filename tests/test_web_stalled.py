"""Panel connections whose clients asked in time and then stall: they never read the answer, or, on
TLS, never answer the panel's close_notify. Neither is a slow request, and both held a connection:
128 of them kept every admin out (the cap made room only by closing connections still waiting for
their request), the first for ever, the second 10 s each. And those whose clients do not stall: one
reading slowly, a browser between two of its requests, which the cap must leave be.

Real sockets against the real server (uvicorn with the panel's protocol on 127.0.0.1), on asyncio's
loop and on uvloop's (the daemon's); the helpers are tests/test_web_limits.py's.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from gateway.web.gate import ConnectionLimits
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.test_web_limits import LIMITS, LOOPS, bites, dial, log_in, panel

# The request deadline as shipped (10 s), out of the way: what lets the admin in is what is tested.
PATIENT = ConnectionLimits(total=8, per_address=3, request_seconds=10.0)
# Enough small pages, asked for at once, to fill the panel's buffers when nobody reads them.
PIPELINED = b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n" * 300
CLOSE_AFTER = b"GET /login HTTP/1.1\r\nHost: panel\r\nConnection: close\r\n\r\n"


def tls_extra(tmp_path: Path) -> tuple[str, ssl.SSLContext]:
    cert, key = make_cert_pair(tmp_path / "tls")
    return f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n', ssl.create_default_context(cafile=str(cert))


def never_reads(port: int, source: str, _tls: ssl.SSLContext | None = None) -> socket.socket:
    """Asks for pages and reads none. The small window and segments keep the kernel from taking the
    answers off the panel's hands (on loopback it takes megabytes otherwise)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(PIPELINED)
    return s


def never_closes(port: int, source: str, tls: ssl.SSLContext | None = None) -> socket.socket:
    """Asks over TLS with `Connection: close`, reads the whole answer and the panel's close_notify,
    and neither answers that nor closes."""
    assert tls is not None
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s = tls.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(CLOSE_AFTER)
    answer = b""
    while chunk := s.recv(65536):  # b"" at the close_notify
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.rstrip().endswith(b"</html>"), answer[-200:]
    return s


def reads_a_trickle(port: int, source: str, _tls: ssl.SSLContext | None = None) -> socket.socket:
    """Asks for pages and reads them at a trickle, 2 KB every 0.1 s, until the socket is closed: the
    kernel takes the answers off the panel's hands (no small segments here) and keeps sending a
    little of them all the time, so that data moves on the connection every moment."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(PIPELINED)

    def trickle() -> None:
        with suppress(OSError):  # closed by the test, or by the panel
            while s.recv(2048):
                time.sleep(0.1)

    threading.Thread(target=trickle, daemon=True).start()
    return s


async def seconds_until_released(server: WebServer, limit: float) -> float:
    """Until the gate no longer counts any connection (no client socket is read meanwhile: reading
    would drain what a stalled client leaves unread); `limit` when it still does by then."""
    start = time.monotonic()
    while server.gate.open and time.monotonic() - start < limit:
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
@pytest.mark.parametrize(
    "stall", [never_reads, never_closes, reads_a_trickle], ids=["never_reads", "never_closes_tls", "trickle"]
)
def test_stalled_clients_at_the_cap_make_room_for_an_admin(
    tmp_path: Path,
    run: Callable[[Coroutine[Any, Any, None]], None],
    stall: Callable[[int, str, ssl.SSLContext | None], socket.socket],
) -> None:
    # The cap full of such clients (from as many addresses), the admin's connection was closed at
    # once: only connections still waiting for their request were closed to make room. A trickle of
    # reading is not a browser between two requests, which the cap spares: it makes room as well.
    extra, tls = tls_extra(tmp_path) if stall is never_closes else ("", None)
    scheme = "https" if tls else "http"

    async def body() -> None:
        async with panel(tmp_path, extra, PATIENT) as (server, port):

            def clients() -> tuple[int, float, str]:
                held = []
                for i in range(PATIENT.total):
                    held.append(stall(port, f"127.0.0.{10 + i}", tls))
                    # One at a time: uvicorn's 503 above `limit_concurrency` (twice the cap) would
                    # otherwise close some, as two answers at once on each come near it.
                    time.sleep(0.25)
                counted = len(server.gate.open)
                start, error = time.monotonic(), ""
                try:
                    log_in(f"{scheme}://127.0.0.1:{port}", verify=tls or True)
                except httpx.HTTPError as exc:
                    error = repr(exc)
                took = time.monotonic() - start
                for s in held:
                    s.close()
                return counted, took, error

            counted, took, error = await asyncio.to_thread(clients)
        if stall is never_reads:  # (the TLS ones may be gone already: their close is bounded)
            assert counted == PATIENT.total
        assert error == "", error
        assert took < 3, took

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_an_answer_nobody_reads_is_abandoned_at_the_deadline(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # The answer written and not read: the connection stayed, its app waiting to write, for ever.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):
                s = await asyncio.to_thread(never_reads, port, "127.0.0.2")
                try:
                    for _ in range(200):  # the loop has taken the connection (under load, not yet)
                        if server.gate.open:
                            break
                        await asyncio.sleep(0.01)
                    held = await seconds_until_released(server, LIMITS.request_seconds * 4)
                finally:
                    s.close()
        assert LIMITS.request_seconds * 0.9 < held < LIMITS.request_seconds * 3, held
        assert "write_time" in bites(logs)

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_close_notify_that_never_comes_is_waited_for_a_second(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # The panel's close on TLS waited for the client's close_notify as long as a request may take
    # (10 s); browsers often never send one. The answer is read whole all the same (never_closes).
    extra, tls = tls_extra(tmp_path)

    async def body() -> None:
        async with panel(tmp_path, extra, PATIENT) as (server, port):
            s = await asyncio.to_thread(never_closes, port, "127.0.0.2", tls)
            try:
                held = await seconds_until_released(server, 5)
            finally:
                s.close()
        assert held < 2.5, held

    run(body())


# A deadline short enough that the kernel's buffer, with the client reading steadily, holds the
# panel's writes paused for longer (the kernel calls a socket writable only once a third of its send
# buffer is free; with the default auto-tuning up to 4 MB, 10 s was enough at 100 KB/s).
BRISK = ConnectionLimits(total=8, per_address=3, request_seconds=0.5)
SERVER_SNDBUF = 64 * 1024  # the kernel doubles it


def reads_slowly(port: int, pages: int) -> tuple[int, float]:
    """Asks for `pages` pages at once and reads them at a steady trickle, about 50 KB/s (a slow
    link): (answers read whole, seconds taken)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n" * pages)
    start, answer = time.monotonic(), b""
    try:
        while answer.count(b"</html>") < pages:
            chunk = s.recv(2048)
            if not chunk:
                break
            answer += chunk
            time.sleep(0.04)
    except OSError:
        pass  # reset: the panel gave up on us
    finally:
        s.close()
    return answer.count(b"</html>"), time.monotonic() - start


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_client_reading_slowly_is_not_cut_off_by_the_write_deadline(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # The deadline timed how long the panel's writes stayed paused, and a client reading steadily
    # but slowly (a CSV export over a slow link) kept them paused for longer: cut off mid-answer,
    # logged as a client that reads nothing. It measures the client's progress now.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, "", BRISK) as (server, port):
                reading = asyncio.create_task(asyncio.to_thread(reads_slowly, port, 150))
                while not server.gate.open:
                    await asyncio.sleep(0.01)
                for conn in server.gate.open:  # no auto-tuning: a buffer of a known size
                    sock = conn._raw.get_extra_info("socket")  # type: ignore[union-attr]
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SERVER_SNDBUF)
                read, took = await reading
        assert read == 150, f"cut off after {read} of 150 answers, {took:.1f} s"
        assert "write_time" not in bites(logs)

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_at_the_cap_silent_connections_go_before_a_download_in_progress(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # A flood of connections that never send a byte filled the cap, and each new one made room by
    # closing the oldest connection not being answered: the admin's export, reading along.
    limits = ConnectionLimits(total=4, per_address=3, request_seconds=10.0)

    async def body() -> None:
        async with panel(tmp_path, "", limits) as (server, port):
            reading = asyncio.create_task(asyncio.to_thread(reads_slowly, port, 150))
            while not server.gate.open:
                await asyncio.sleep(0.01)
            for conn in server.gate.open:
                sock = conn._raw.get_extra_info("socket")  # type: ignore[union-attr]
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SERVER_SNDBUF)
            await asyncio.sleep(0.5)  # the download under way

            def flood() -> list[socket.socket]:
                silent = []
                for i in range(12):  # three times the cap, each from an address of its own
                    silent.append(
                        socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.1.{i + 1}", 0))
                    )
                    time.sleep(0.05)
                return silent

            silent = await asyncio.to_thread(flood)
            try:
                read, took = await reading
            finally:
                for s in silent:
                    s.close()
        assert read == 150, f"the download was cut after {read} of 150 answers, {took:.1f} s"

    run(body())


LOGIN = b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n"


def next_page(s: socket.socket) -> str:
    """One more page on a keep-alive connection: "ok", or how it failed."""
    try:
        s.sendall(LOGIN)
        answer = b""
        while not answer.rstrip().endswith(b"</html>"):
            chunk = s.recv(65536)
            if not chunk:
                return f"closed after {len(answer)} bytes"
            answer += chunk
    except OSError as exc:
        return repr(exc)
    return "ok"


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_at_the_cap_a_browser_between_two_requests_keeps_its_connection(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # An admin's browser asks for page after page on one keep-alive connection while connections
    # from elsewhere keep coming at the cap. Between two of its requests the connection counted as
    # waiting for its request, the oldest such: the first newcomer over the cap closed it, and the
    # next request, sent a moment later, met the close. Once it has stood idle for
    # `stalled_seconds` it makes room as before.
    limits = ConnectionLimits(total=4, per_address=3, request_seconds=10.0)

    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, "", limits) as (_server, port):

                def browse() -> tuple[list[str], str]:
                    browser, silent = dial(port, "127.0.0.2"), []
                    try:
                        pages = []
                        for i in range(3 * limits.total):
                            pages.append(next_page(browser))
                            if pages[-1] != "ok":
                                break
                            # A newcomer from elsewhere just after the answer; the next request follows.
                            silent.append(dial(port, f"127.0.1.{i + 1}"))
                            time.sleep(0.05)  # the gate has taken it
                        time.sleep(limits.stalled_seconds * 1.5)
                        silent.append(dial(port, "127.0.1.99"))
                        time.sleep(0.2)
                        return pages, next_page(browser)
                    finally:
                        for s in [browser, *silent]:
                            s.close()

                pages, after_idling = await asyncio.to_thread(browse)
        assert pages == ["ok"] * 3 * limits.total, pages
        assert after_idling != "ok"  # idle for longer than the grace: the oldest, it made room
        assert "connections" in bites(logs)

    run(body())
