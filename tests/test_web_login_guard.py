"""The panel's login and the lockout it shares with SMTP AUTH: what reaches the guard, and that every
guess it reserves is given back or counted, through the real HTTP server."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.web.app import WebContext
from gateway.web.server import WebServer
from tests.web_helpers import ADMIN, PASSWORD, csrf_of, panel_store, password_hash, web_context

BOUNDARY = "XBOUNDARY"


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[WebContext, httpx.AsyncClient]]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(web)
    port = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            yield web, c
    finally:
        await server.stop()
        store.close()


async def form_login(c: httpx.AsyncClient, email: str, password: str) -> int:
    token = csrf_of((await c.get("/login")).text)
    r = await c.post("/login", data={"email": email, "password": password, "csrf": token})
    return r.status_code


async def escaped_login(c: httpx.AsyncClient, email: str, password: str) -> int:
    """A multipart login whose own charset (unicode_escape) turns the text `\\ud800` into a lone surrogate."""
    token = csrf_of((await c.get("/login")).text)
    fields = (("csrf", token), ("email", email), ("password", password))
    body = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields
    )
    content_type = f"multipart/form-data; boundary={BOUNDARY}; charset=unicode_escape"
    r = await c.post(
        "/login", content=(body + f"--{BOUNDARY}--\r\n").encode(), headers={"Content-Type": content_type}
    )
    return r.status_code


def nothing_in_flight(web: WebContext) -> bool:
    return web.guard._pending == {} and web.guard._overall_pending == 0


async def test_a_password_decoded_to_a_lone_surrogate_is_refused_alike_and_holds_no_slot(
    tmp_path: Path,
) -> None:
    # The dummy check of an unknown login (or of one without a password) raised on "\ud800": a 500
    # where a known login got 401 told which logins exist, and each such guess stayed reserved for
    # ever, so that three of them locked Carl at this address with no lock to show or unlift.
    async with served(tmp_path) as (web, c):
        codes = {
            who: [await escaped_login(c, who, "\\ud800") for _ in range(3)]
            for who in ("nobody@acme.example", "carl@rival.example", ADMIN)
        }
        assert nothing_in_flight(web)
        carl_hash = password_hash()
        await web.store.write(
            lambda: web.store.accounts.set_user("carl@rival.example", role="admin", password_hash=carl_hash)
        )
        carl = await form_login(c, "carl@rival.example", PASSWORD)
    assert codes == dict.fromkeys(codes, [400] * 3)
    assert carl == 303
    assert web.guard.locks() == []


async def test_a_fault_during_the_check_gives_the_guess_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database fault between reserving a guess and settling it left the reservation in place:
    # three of them and the admin's right password was refused at this address until a restart.
    async with served(tmp_path) as (web, c):
        real = web.store.accounts.find_user

        def broken(_email: str) -> Any:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(web.store.accounts, "find_user", broken)
        faults = [await form_login(c, ADMIN, PASSWORD) for _ in range(3)]
        monkeypatch.setattr(web.store.accounts, "find_user", real)
        assert nothing_in_flight(web)
        after = await form_login(c, ADMIN, PASSWORD)
    assert faults == [500] * 3
    assert after == 303


async def test_admins_logging_in_at_once_from_one_address_all_get_in(tmp_path: Path) -> None:
    # Six browsers of one login behind one NAT at the same moment: the checks in flight are not
    # failures (the guard is SMTP AUTH's), so none is refused as if it had failed.
    async with served(tmp_path) as (web, c):
        base = str(c.base_url)

        async def browser() -> int:
            async with httpx.AsyncClient(base_url=base, timeout=30) as own:
                return await form_login(own, ADMIN, PASSWORD)

        codes = await asyncio.gather(*(browser() for _ in range(6)))
        assert nothing_in_flight(web)
    assert codes == [303] * 6
    assert web.guard.locks() == []
