"""The panel reads a Host header as RFC 7230 has it, `uri-host [":" port]`, and refuses anything else.

Everything before a lone ':' was taken for the host: `localhost:PORT@evil.example`,
`localhost:PORT, evil.example` and `localhost:99999` were answered as the panel's own, and a bad
port went into the HTTPS redirect's Location. Raw requests through the real server (uvicorn with
the panel's protocol on 127.0.0.1), the Host header sent exactly as written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.test_web_limits import dial, panel
from tests.test_web_plain_http import answer as parts
from tests.test_web_plain_http import tls_extra
from tests.test_web_request_bounds import answer as read_to_close
from tests.web_helpers import HOST

REFUSED = b"the panel does not answer to this host name"


def get(port: int, host: str) -> bytes:
    """GET /login with `host` as its Host header; the whole answer."""
    request = f"GET /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    return read_to_close(dial(port, "127.0.0.1", request.encode("latin-1")))


def bad_hosts(port: int) -> list[str]:
    return [
        f"localhost:{port}@evil.example",
        f"localhost:{port}, evil.example",
        f"{HOST}:{port}@evil.example",
        f"[::1]:{port}@evil.example",
        "localhost:99999",
        "localhost:0",
        f"localhost:{port}x",
        "localhost:",
        "::1",  # an IPv6 address goes in brackets
        f"[fe80::1%25lo]:{port}",
        f"{HOST} :{port}",
    ]


def good_hosts(port: int) -> list[str]:
    return [f"localhost:{port}", HOST, "PANEL.TEST.", f"[::1]:{port}", f"127.0.0.1:{port}", "localhost:65535"]


def test_a_host_that_is_not_host_and_port_is_refused(tmp_path: Path) -> None:
    async def body() -> tuple[dict[str, bytes], dict[str, bytes]]:
        async with panel(tmp_path) as (_, port):

            def clients() -> tuple[dict[str, bytes], dict[str, bytes]]:
                bad = {h: get(port, h) for h in bad_hosts(port)}
                return bad, {h: get(port, h) for h in good_hosts(port)}

            return await asyncio.to_thread(clients)

    bad, good = asyncio.run(body())
    for host, got in bad.items():
        assert got.startswith(b"HTTP/1.1 400 ") and REFUSED in got, (host, got[:300])
    for host, got in good.items():
        assert got.startswith(b"HTTP/1.1 200 ") and b'name="csrf"' in got, (host, got[:300])


def test_plain_http_on_the_tls_port_is_not_sent_to_a_port_that_cannot_be(tmp_path: Path) -> None:
    # Location: https://panel.test:99999/ was the answer: a port no server can have.
    extra, _ = tls_extra(tmp_path)

    async def body() -> tuple[int, dict[str, bytes]]:
        async with panel(tmp_path, extra) as (_, port):

            def clients() -> dict[str, bytes]:
                got = {}
                for host in (f"{HOST}:99999", f"{HOST}:0", f"{HOST}:{port}"):
                    s = dial(port, "127.0.0.1", f"GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                    got[host] = read_to_close(s)
                return got

            return port, await asyncio.to_thread(clients)

    port, got = asyncio.run(body())
    for host in (f"{HOST}:99999", f"{HOST}:0"):
        status, headers, _ = parts(got[host])
        assert status == "HTTP/1.1 400 Bad Request" and "location" not in headers, (host, got[host])
    status, headers, _ = parts(got[f"{HOST}:{port}"])
    assert status == "HTTP/1.1 301 Moved Permanently", got
    assert headers["location"] == f"https://{HOST}:{port}/x", got
