"""What a request must be for the panel to read it: a small body, whether its length is declared or
sent in chunks. Through the real server (uvicorn with the panel's protocol on 127.0.0.1) with raw
sockets, on asyncio's loop and on uvloop's (the daemon's)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from gateway.web.bodycap import MAX_BODY_BYTES
from tests.test_web_limits import LOOPS, dial, log_in, panel


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
