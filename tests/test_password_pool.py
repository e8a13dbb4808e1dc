"""Password checks run on their own two threads, whoever asks for them.

Each scrypt holds 16 MiB while it runs. The panel's logins went to asyncio's default pool (up to 32
threads on a 2-core machine): a burst of logins held up to 512 MiB at once, where submission's AUTH
already kept to two threads.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

import acl.passwords
from gateway.web.server import WebServer
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, PASSWORD, csrf_of, panel_store, web_context


class Watch:
    """Which threads ran scrypt, and how many at most at once (a wrapper, the hash itself is real)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.threads: set[str] = set()

    def wrap(self, real):  # type: ignore[no-untyped-def]
        def counted(*args):  # type: ignore[no-untyped-def]
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
                self.threads.add(threading.current_thread().name)
            try:
                return real(*args)
            finally:
                with self.lock:
                    self.running -= 1

        return counted


async def test_a_burst_of_panel_logins_checks_two_passwords_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch()
    monkeypatch.setattr(acl.passwords, "_scrypt", watch.wrap(acl.passwords._scrypt))
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(web)
    port = await server.start()
    logins = [(who, PASSWORD) for who in (OPERATOR, ADMIN, OTHER_ADMIN)]
    logins += [(f"nobody{i}@acme.example", "a guess") for i in range(5)]

    async def log_in(who: str, password: str) -> int:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            token = csrf_of((await c.get("/login")).text)
            r = await c.post("/login", data={"email": who, "password": password, "csrf": token})
            return r.status_code

    try:
        codes = await asyncio.gather(*(log_in(who, pw) for who, pw in logins))
    finally:
        await server.stop()
        web.counts.close()
        store.close()
    assert codes[:3] == [303] * 3 and all(code in (401, 429) for code in codes[3:]), codes
    assert watch.threads and all(name.startswith("smsgw-passwords") for name in watch.threads), watch.threads
    assert 1 <= watch.peak <= 2, watch.peak
