"""The panel's login log, overlong logins and sessions whose user lost the right to them, through
the real HTTP server on 127.0.0.1 (the login form as a browser posts it, on one kept-alive
connection as a script would)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog

from acl.logins import MAX_LOGIN
from gateway.web.app import LOGIN_REFUSED, WebContext
from gateway.web.server import WebServer
from tests.web_helpers import ADMIN, OPERATOR, PASSWORD, csrf_of, panel_store, web_context

LOGIN_EVENTS = ("web.login_refused", "web.login_failed")


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[WebContext, str]]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(web)
    port = await server.start()
    try:
        yield web, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        web.counts.close()
        store.close()


async def post_login(c: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = csrf_of((await c.get("/login")).text)
    return await c.post("/login", data={"email": email, "password": password, "csrf": token})


def login_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] in LOGIN_EVENTS]


# ---- 1. refused logins are logged at most once a second per kind, the rest counted --------------


async def test_a_login_flood_after_the_lock_logs_a_line_a_second_and_counts_the_rest(tmp_path: Path) -> None:
    # One connection posting the login form in a loop after its lock wrote a warning per request:
    # 1,350 lines a second, enough to fill the disk or trip journald's rate limit.
    floods = 100
    async with served(tmp_path) as (_web, base), httpx.AsyncClient(base_url=base, timeout=30) as c:
        with structlog.testing.capture_logs() as logs:
            token = csrf_of((await c.get("/login")).text)
            data = {"email": ADMIN, "password": "wrong", "csrf": token}
            codes = [(await c.post("/login", data=data)).status_code for _ in range(3)]
            assert codes == [401, 401, 429]  # the third failure locks ADMIN at this address
            first = (await c.post("/login", data=data)).status_code
            # The first refusal of the burst is logged at once, not held back.
            assert [e["reason"] for e in logs if e["event"] == "web.login_refused"] == [
                "login locked at this address"
            ]
            started = time.monotonic()
            flood = [(await c.post("/login", data=data)).status_code for _ in range(floods)]
            seconds = time.monotonic() - started
            during = len(login_lines(logs))
            said = sum(
                e["suppressed"] + (0 if e.get("summary") else 1)
                for e in login_lines(logs)
                if e["event"] == "web.login_refused"
            )
            await asyncio.sleep(1.5)  # quiet for a second: the counts still held are logged
    assert first == 429 and set(flood) == {429}
    lines = login_lines(logs)
    refused = [e for e in lines if e["event"] == "web.login_refused"]
    failed = [e for e in lines if e["event"] == "web.login_failed"]
    # A line a second at most (the failures' two kinds, the refusals' one), not one per request.
    assert during <= 3 + math.ceil(seconds) + 1, (
        f"{during} lines for {floods + 4} refusals in {seconds:.1f} s"
    )
    assert during < floods / 10
    # Every refusal is accounted for: the lines themselves and the counts they say were left out.
    assert (
        sum(1 + e["suppressed"] for e in refused if not e.get("summary"))
        + sum(e["suppressed"] for e in refused if e.get("summary"))
        == floods + 1
    )
    assert (
        sum(1 + e["suppressed"] for e in failed if not e.get("summary"))
        + sum(e["suppressed"] for e in failed if e.get("summary"))
        == 3
    )
    assert all(e["ip"] == "127.0.0.1" for e in lines)
    # What was still held when the flood ended is said once quiet. (On a slow machine the flood's last
    # request may have opened a new second itself: then nothing was held, and no summary is due.)
    assert any(e.get("summary") for e in refused) == (said < floods + 1), (said, refused)


# ---- 2. a login longer than any address --------------------------------------------------------


async def test_an_overlong_login_is_refused_as_any_failure_counted_and_kept_small(tmp_path: Path) -> None:
    # 60 KB "logins" were kept as typed by the lockout's counters: about 100 KB each for 24 hours.
    async with served(tmp_path) as (web, base), httpx.AsyncClient(base_url=base, timeout=30) as c:
        short = await post_login(c, "nobody@acme.example", "guess")
        overlong = [
            await post_login(c, f"{i:03d}" + "u" * 20_000 + "@acme.example", "guess") for i in range(19)
        ]
        # The answer is any failure's: the same status, the same page (the form's token is kept).
        assert [r.status_code for r in overlong] == [401] * 18 + [429]  # the 20th failure locks the address
        assert overlong[0].text == short.text and LOGIN_REFUSED.split(",")[0] in short.text
        # Counted against the address like any other: it is locked now, the right password too.
        assert (await post_login(c, ADMIN, PASSWORD)).status_code == 429
        locked = await post_login(c, "x" * 5000 + "@acme.example", "guess")
        assert locked.status_code == 429 and LOGIN_REFUSED.split(",")[0] in locked.text
        keys = list(web.guard._keys)
        # An address itself, at the limit, is still a login as typed (its pair and login counters).
        at_limit = ("a" * (MAX_LOGIN - len("@acme.example"))) + "@acme.example"
        async with httpx.AsyncClient(base_url=base, timeout=30, transport=_from("127.0.0.2")) as other:
            assert (await post_login(other, at_limit, "guess")).status_code == 401
        assert ("login", "", at_limit) in web.guard._keys
    assert len(keys) == 1 + 20 * 2  # the address, and a pair and a login counter per failure
    assert max(len(k[2]) for k in keys) <= 64


def _from(address: str) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(local_address=address)


# ---- 3. a session whose user lost the panel role, or was removed, or has a new password ----------


async def login_as(base: str, email: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=base, timeout=30)
    r = await post_login(c, email, PASSWORD)
    assert r.status_code == 303, r.text
    return c


async def set_role(operator: httpx.AsyncClient, email: str, role: str) -> None:
    token = csrf_of((await operator.get("/users")).text)
    r = await operator.post(
        "/users",
        data={"csrf": token, "action": "role", "email": email, "role": role, "current_password": PASSWORD},
    )
    assert r.status_code == 303, r.text


async def test_a_role_given_back_does_not_revive_the_old_session(tmp_path: Path) -> None:
    # The session was only refused while the role was missing: given back, the old cookie and its
    # old CSRF token worked again (200, then a form accepted).
    async with served(tmp_path) as (_web, base):
        operator, admin = await login_as(base, OPERATOR), await login_as(base, ADMIN)
        try:
            token = csrf_of((await admin.get("/users")).text)
            await set_role(operator, ADMIN, "user")
            assert (await admin.get("/users")).status_code == 303  # to the login page
            await set_role(operator, ADMIN, "admin")
            assert (await admin.get("/users")).status_code == 303  # ended, not only refused
            data = {
                "csrf": token,
                "action": "limits",
                "email": ADMIN,
                "monthly_limit": "5",
                "daily_limit": "",
            }
            assert (await admin.post("/users", data=data)).status_code == 401
            # A new login is the way back, and gets a new token.
            again = await login_as(base, ADMIN)
            assert (await again.get("/users")).status_code == 200
            assert csrf_of((await again.get("/users")).text) != token
            await again.aclose()
        finally:
            await operator.aclose()
            await admin.aclose()


async def test_a_removed_user_or_a_changed_password_ends_the_session_for_good(tmp_path: Path) -> None:
    # The same for a user removed and added again, and a password changed (the CLI, another process)
    # and set back: the old cookie came back to life.
    async with served(tmp_path) as (web, base):
        store, accounts = web.store, web.store.accounts
        admin = await login_as(base, ADMIN)
        operator = await login_as(base, OPERATOR)
        try:
            assert (await admin.get("/")).status_code == 200
            old = accounts.find_user(ADMIN)
            assert old is not None and old.password_hash

            await store.write(lambda: accounts.remove_user(ADMIN))
            assert (await admin.get("/")).status_code == 303

            def add_back() -> None:
                accounts.add_user(ADMIN, "acme", password_hash=old.password_hash)
                accounts.set_user(ADMIN, role="admin")

            await store.write(add_back)
            assert (await admin.get("/")).status_code == 303  # not revived

            admin2 = await login_as(base, ADMIN)
            await store.write(lambda: accounts.set_user(ADMIN, password_hash="scrypt$other"))
            assert (await admin2.get("/")).status_code == 303
            await store.write(lambda: accounts.set_user(ADMIN, password_hash=old.password_hash))
            assert (await admin2.get("/")).status_code == 303  # not revived
            await admin2.aclose()
            assert (await operator.get("/")).status_code == 200  # nobody else's session ended
        finally:
            await admin.aclose()
            await operator.aclose()
