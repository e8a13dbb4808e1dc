"""Plain http:// to the panel's HTTPS port: an answer the browser can show, not a closed connection.

A browser given http://host:port/ for the TLS port sent its request in the clear and got an empty
reply. Real sockets against the real server (uvicorn with the panel's protocol) on asyncio's loop
and on uvloop's (the daemon's); a real TLS client afterwards on the same server.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.web.refusal import REFUSAL_SECONDS
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.test_web_limits import LIMITS, LOOPS, dial, log_in, panel, released, seconds_until_closed
from tests.test_web_request_bounds import answer as read_to_close
from tests.web_helpers import HOST, panel_store, web_context


def exchange(
    port: int, data: bytes, source: str = "127.0.0.1", half_close: bool = False
) -> tuple[bytes, float]:
    """Sends `data` in the clear and reads until the server closes: what came back, and how long
    that took (10 s at most: then the socket's timeout raises)."""
    start = time.monotonic()
    s = dial(port, source, data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    got = read_to_close(s)
    return got, time.monotonic() - start


def answer(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """The status line, the headers (lower-case names) and the body of a plain HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("ascii").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def tls_extra(tmp_path: Path) -> tuple[str, ssl.SSLContext]:
    cert, key = make_cert_pair(tmp_path / "tls")
    return f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n', ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_plain_http_to_the_tls_port_is_sent_to_https_and_https_still_works(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    extra, trusted = tls_extra(tmp_path)

    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, extra) as (server, port):

                def clients() -> list[tuple[bytes, float]]:
                    plain = [
                        f"GET /messages?x=1 HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n",
                        f"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
                        f"GET /login HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n",
                        # no plain host[:port]: its host is not ::1, and the browser would go to evil.example
                        f"GET / HTTP/1.1\r\nHost: [::1]@evil.example:{port}\r\n\r\n",
                        # a POST whose body is still coming when the answer goes
                        f"POST /login HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Length: 100\r\n\r\ncsrf=",
                    ]
                    got = [exchange(port, r.encode()) for r in plain]
                    got.append(exchange(port, b"GET / HTTP/1.1\r\nHost: pan", half_close=True))
                    log_in(f"https://127.0.0.1:{port}", verify=trusted)  # HTTPS afterwards, same server
                    return got

                got = await asyncio.to_thread(clients)
                await released(server)
        assert all(seconds < LIMITS.request_seconds / 2 for _, seconds in got), got
        (status, headers, text), (head_status, head_headers, head_body) = answer(got[0][0]), answer(got[1][0])
        assert status == "HTTP/1.1 301 Moved Permanently", got[0]
        assert headers["location"] == f"https://{HOST}:{port}/messages?x=1"
        assert headers["connection"] == "close"
        assert f"https://{HOST}:{port}/messages?x=1".encode() in text
        assert head_status == "HTTP/1.1 301 Moved Permanently" and head_body == b""
        assert head_headers["location"] == f"https://127.0.0.1:{port}/"
        for raw, _ in got[2:4]:
            status, headers, text = answer(raw)
            assert status == "HTTP/1.1 400 Bad Request" and "location" not in headers, raw
            assert b"https://" in text and b"evil" not in raw, raw
        assert answer(got[4][0])[1]["location"] == f"https://{HOST}:{port}/login"
        assert answer(got[5][0])[0] == "HTTP/1.1 400 Bad Request", got[5]
        said = [e for e in logs if e["event"] == "web.plain_http_on_tls_port"]
        assert [e["status"] for e in said] == [301, 301, 400, 400, 301, 400]
        assert {(e["log_level"], e["address"]) for e in said} == {("debug", "127.0.0.1")}
        assert not [e for e in logs if e["event"] == "web.limit_hit"], logs

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_plain_bytes_on_the_tls_port_are_counted_bounded_and_timed(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Plain HTTP is read within the connection's limits: counted against its address's share,
    # never past 8 KiB of head, and closed at the request deadline when it stops coming.
    extra, _ = tls_extra(tmp_path)
    huge = b"GET / HTTP/1.1\r\nHost: panel.test\r\n" + b"X-Filler: " + b"a" * 9000 + b"\r\n\r\n"

    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, extra) as (server, port):

                def clients() -> tuple[list[float], float, tuple[bytes, float], tuple[bytes, float]]:
                    opened = time.monotonic()
                    slow = [dial(port, "127.0.0.2", b"G") for _ in range(LIMITS.per_address - 1)]
                    slow.append(dial(port, "127.0.0.2", b"GET / HTTP/1.1\r\nHost: pan"))
                    time.sleep(0.1)
                    over = seconds_until_closed(dial(port, "127.0.0.2"))  # the address's share is full
                    big = exchange(port, huge)
                    junk = exchange(port, b"QUIT\r\n")  # neither TLS nor HTTP: closed at once
                    return [seconds_until_closed(s, opened) for s in slow], over, big, junk

                closed, over, big, junk = await asyncio.to_thread(clients)
                await released(server)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        # Refused at once, given only the time for a handshake to be told why (gateway/web/refusal.py).
        assert over < REFUSAL_SECONDS + 0.5, over
        assert answer(big[0])[0] == "HTTP/1.1 400 Bad Request" and big[1] < LIMITS.request_seconds / 2, big
        assert junk[0] == b"" and junk[1] < LIMITS.request_seconds / 2, junk
        assert {e["address"] for e in logs if e.get("limit") == "request_time"} == {"127.0.0.2"}

    run(body())


async def test_plain_http_to_a_machine_name_with_an_underscore_is_sent_to_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a wildcard address the panel answers to the machine's name, and a name with an underscore
    # (a container's, `my_host`) is one its pages answer: plain http to the TLS port by it was told
    # 400 "speaks HTTPS only" instead of being sent to the https:// address that works.
    monkeypatch.setattr(socket, "gethostname", lambda: "my_host")
    extra, _ = tls_extra(tmp_path)
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "0.0.0.0:0"\n' + extra)
    server = WebServer(web, LIMITS)
    port = await server.start()
    try:
        plain = f"GET /messages HTTP/1.1\r\nHost: my_host:{port}\r\n\r\n".encode()
        status, headers, _ = answer((await asyncio.to_thread(exchange, port, plain))[0])
        await released(server)
    finally:
        await server.stop()
        web.counts.close()
        store.close()
    assert status == "HTTP/1.1 301 Moved Permanently", status
    assert headers["location"] == f"https://my_host:{port}/messages"
