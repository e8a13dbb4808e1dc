"""What a request must be for the panel to read it: a small body, whether its length is declared or
sent in chunks, through the real server (uvicorn with the panel's protocol on 127.0.0.1) with raw
sockets, on asyncio's loop and on uvloop's (the daemon's); and one of the panel's host names."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import ConfigError, parse_config
from gateway.web.app import WebContext, build_app
from gateway.web.bodycap import MAX_BODY_BYTES
from tests.test_web_limits import LOOPS, dial, log_in, panel
from tests.web_helpers import HOST, panel_store, web_context
from tests.web_helpers import web as web  # the fixture


def answer(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    return got


def declared_big_login(port: int) -> bytes:
    """A login form that says it is 1 MB; nothing of its body is sent: the answer cannot wait for it."""
    head = (
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {1024 * 1024}\r\n\r\n"
    )
    return answer(dial(port, "127.0.0.1", head.encode()))


def chunked_big_login(port: int) -> bytes:
    """A login form sent in chunks past the cap, its last chunk never sent."""
    head = (
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    s = dial(port, "127.0.0.1", head)
    chunk = b"a=" + b"x" * (16 * 1024 - 2)
    try:
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed once answered: what it answered is still to be read
    return answer(s)


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_body_over_the_cap_is_answered_413_declared_or_chunked(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # POST /login, before any login, read forms of 1,000 fields of 1 MB into memory: 1.5 GB of the
    # daemon's memory from a few connections.
    async def body() -> None:
        async with panel(tmp_path) as (_, port):

            def clients() -> tuple[bytes, bytes]:
                declared, chunked = declared_big_login(port), chunked_big_login(port)
                log_in(f"http://127.0.0.1:{port}")  # a login's form is well within it
                return declared, chunked

            declared, chunked = await asyncio.to_thread(clients)
        for got in (declared, chunked):
            assert got.startswith(b"HTTP/1.1 413 "), got[:200]
            assert b"the panel takes at most 64 KB" in got

    run(body())


async def status(web: WebContext, base: str, path: str) -> int:
    transport = httpx.ASGITransport(app=build_app(web), client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        return (await c.get(path)).status_code


async def test_only_the_panels_own_names_are_answered(web: WebContext) -> None:
    # A page that resolves its own name to 127.0.0.1 (DNS rebinding) read /metrics (every account's
    # name and traffic) from the operator's browser, and spent the login guesses of 127.0.0.1.
    for base in ("http://attacker.example:8080", "http://127.0.0.1.attacker.example", "http://x.panel.test"):
        for path in ("/metrics", "/login", "/healthz"):
            assert await status(web, base, path) == 400, (base, path)
    for base in (f"http://{HOST}", "http://PANEL.TEST.", "http://127.0.0.1:8080", "http://localhost:8080"):
        assert await status(web, base, "/login") == 200, base
    assert await status(web, "http://[::1]:8080", "/metrics") == 200


async def test_a_wildcard_listen_answers_to_the_machines_name(tmp_path: Path) -> None:
    import socket

    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "0.0.0.0:8080"\n')
    try:
        assert await status(web, f"http://{socket.gethostname()}:8080", "/login") == 200
        assert await status(web, "http://attacker.example:8080", "/login") == 400
    finally:
        web.counts.close()
        store.close()


def test_hostnames_are_names_without_scheme_or_port(tmp_path: Path) -> None:
    def web_section(names: str) -> Any:
        gateway = f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "{tmp_path}"\n'
        text = f"{gateway}[web]\nhostnames = [{names}]\n"
        return parse_config(text, source="t", base_dir=tmp_path, links_required=False).web

    for bad in ("https://panel.example.com", "panel.example.com:443", "", "a b"):
        with pytest.raises(ConfigError, match="is not a host name"):
            web_section(f'"{bad}"')
    assert web_section('"panel.example.com"').hostnames == ["panel.example.com"]
