"""Panel sessions: how many one login keeps, when they end, and their cookie behind HTTPS.

Logins go through the panel's app (ASGI client) with the store's clock injected, so that idle and
absolute expiry are tested without waiting; the cookie and HSTS tests go through the real server
on 127.0.0.1, as a browser or a TLS-terminating proxy reaches it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gateway.web import security
from gateway.web.app import WebContext
from gateway.web.security import SESSION_COOKIE
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    OTHER_ADMIN,
    PASSWORD,
    client,
    csrf_of,
    login,
    panel_store,
    web_context,
)

MINUTE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * MINUTE


@asynccontextmanager
async def panel(tmp_path: Path, extra: str = "") -> AsyncIterator[tuple[WebContext, Clock]]:
    store = panel_store(tmp_path)
    clock = Clock()
    store.clock = clock  # the sessions take the store's clock, as in the daemon
    web = web_context(tmp_path, store, extra)
    try:
        yield web, clock
    finally:
        web.counts.close()
        store.close()


async def session_of(web: WebContext, email: str) -> str:
    """A new session's cookie, from the real login form."""
    async with client(web) as c:
        r = await login(c, email)
        assert r.status_code == 303, r.text
        return c.cookies[SESSION_COOKIE]


async def status(web: WebContext, token: str, path: str = "/") -> int:
    """What a browser holding `token` gets for a page (200, or 303 to the login page)."""
    async with client(web) as c:
        c.cookies.set(SESSION_COOKIE, token)
        return (await c.get(path)).status_code


async def test_a_login_in_a_loop_ends_its_own_oldest_sessions_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One table for everyone, its oldest dropped when full: a company admin logging in again and
    # again logged out every panel user, the operator first. (The table is made small here; at
    # 10,000 it took the admin a few minutes.)
    monkeypatch.setattr(security, "MAX_SESSIONS", 30)
    async with panel(tmp_path) as (web, _clock):
        operator = await session_of(web, OPERATOR)
        rival = await session_of(web, OTHER_ADMIN)
        mine = [await session_of(web, ADMIN) for _ in range(40)]
        assert await status(web, operator) == 200
        assert await status(web, rival) == 200
        kept = [await status(web, token) for token in mine]
        assert kept == [303] * (40 - security.MAX_PER_LOGIN) + [200] * security.MAX_PER_LOGIN


async def test_a_full_login_ends_its_session_idle_longest_not_the_one_in_use(tmp_path: Path) -> None:
    # The 21st login ended the login's first session, by the time it was opened: the one the admin
    # was working in, while 19 forgotten ones stayed.
    async with panel(tmp_path) as (web, _clock):
        tokens = [await session_of(web, ADMIN) for _ in range(security.MAX_PER_LOGIN)]
        assert await status(web, tokens[0]) == 200  # session #1 in use
        newest = await session_of(web, ADMIN)
        assert await status(web, tokens[0]) == 200
        assert await status(web, tokens[1]) == 303  # #2, idle longest, is the one that went
        assert [await status(web, t) for t in (*tokens[2:], newest)] == [200] * (security.MAX_PER_LOGIN - 1)


async def test_idle_sessions_go_before_anyones_live_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The table full: the sessions nobody has used for the idle time go, not the oldest live one.
    monkeypatch.setattr(security, "MAX_SESSIONS", 4)
    async with panel(tmp_path) as (web, clock):
        operator = await session_of(web, OPERATOR)
        left_open = [await session_of(web, ADMIN) for _ in range(3)]
        clock.advance(security.IDLE_MINUTES - 5)
        assert await status(web, operator) == 200  # the operator works on
        clock.advance(10)
        newcomer = await session_of(web, OTHER_ADMIN)
        assert await status(web, operator) == 200
        assert await status(web, newcomer) == 200
        assert [await status(web, token) for token in left_open] == [303] * 3


async def test_a_session_ends_after_its_idle_time_and_each_request_extends_it(tmp_path: Path) -> None:
    # A panel left open on a shared PC stayed logged in for the whole 8 hours.
    async with panel(tmp_path) as (web, clock):
        token = await session_of(web, ADMIN)
        for _ in range(4):  # two hours of work, a request every idle time less a minute
            clock.advance(security.IDLE_MINUTES - 1)
            assert await status(web, token) == 200
        clock.advance(security.IDLE_MINUTES + 1)
        assert await status(web, token) == 303
        async with client(web) as c:  # a form sent after it: refused, and asked to log in
            c.cookies.set(SESSION_COOKIE, token)
            r = await c.post("/users", data={"action": "add", "email": "x@acme.example", "csrf": "x"})
            assert r.status_code == 401 and "please log in" in r.text
        assert await status(web, token) == 303  # gone for good, not revived by the clock


async def test_session_hours_stays_the_most_a_busy_session_lasts(tmp_path: Path) -> None:
    async with panel(tmp_path, "session_hours = 1\n") as (web, clock):
        token = await session_of(web, ADMIN)
        for _ in range(5):
            clock.advance(11)
            assert await status(web, token) == 200
        clock.advance(6)  # 61 minutes after the login, a request a few minutes ago
        assert await status(web, token) == 303


# ---- the cookie and HSTS over HTTPS, through the real server ------------------------------------


@asynccontextmanager
async def served(tmp_path: Path, extra: str) -> AsyncIterator[int]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n' + extra)
    server = WebServer(web)
    port = await server.start()
    try:
        yield port
    finally:
        await server.stop()
        web.counts.close()
        store.close()


async def cookie_and_hsts(
    base: str, headers: dict[str, str], source: str = "127.0.0.1", verify: object = True
) -> tuple[str, str | None, str | None]:
    """The session cookie a login sets, and the HSTS header of the login page and of a static file.

    The login form's cookie is sent back by hand: behind the proxy it is Secure, and a client that
    speaks plain HTTP to the panel (as the proxy does) would not send it."""
    transport = httpx.AsyncHTTPTransport(local_address=source, verify=verify)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=base, transport=transport, headers=headers) as c:
        page = await c.get("/login")
        form_cookie = page.headers["set-cookie"].split(";")[0]
        data = {"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)}
        r = await c.post("/login", data=data, headers={"cookie": form_cookie})
        assert r.status_code == 303, r.text
        # Under its name over HTTPS too (`__Host-smsgw_session`, tests/test_web_host_cookies.py).
        cookie = next(v for v in r.headers.get_list("set-cookie") if SESSION_COOKIE in v.split("=")[0])
        static = await c.get("/static/style.css")
        assert static.status_code == 200
    hsts = "strict-transport-security"
    return cookie, page.headers.get(hsts), static.headers.get(hsts)


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def secure(cookie: str) -> bool:
    return "secure" in [p.strip().lower() for p in cookie.split(";")]


async def test_behind_a_trusted_tls_proxy_the_cookie_is_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    # Behind a TLS-terminating proxy the cookie had no Secure flag (only the panel's own TLS set it)
    # and no answer carried Strict-Transport-Security.
    async with served(tmp_path, 'trusted_proxies = ["127.0.0.1"]\n') as port:
        base = f"http://127.0.0.1:{port}"
        cookie, page, static = await cookie_and_hsts(base, {"X-Forwarded-Proto": "https"})
        assert secure(cookie), cookie
        assert page == static == "max-age=31536000"
        # Plain HTTP through the same proxy: no Secure (the browser would not send it back), no HSTS.
        cookie, page, static = await cookie_and_hsts(base, {"X-Forwarded-Proto": "http"})
        assert not secure(cookie) and page is static is None
        # The header from anyone but the proxy is nobody's word.
        cookie, page, static = await cookie_and_hsts(base, {"X-Forwarded-Proto": "https"}, "127.0.0.2")
        assert not secure(cookie) and page is static is None


async def test_without_trusted_proxies_a_forwarded_proto_changes_nothing(tmp_path: Path) -> None:
    async with served(tmp_path, "") as port:
        cookie, page, _ = await cookie_and_hsts(f"http://127.0.0.1:{port}", {"X-Forwarded-Proto": "https"})
        assert not secure(cookie) and page is None


async def test_on_the_panels_own_tls_the_cookie_is_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    cert, key = make_cert_pair(tmp_path / "tls")
    async with served(tmp_path, f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n') as port:
        cookie, page, static = await cookie_and_hsts(f"https://127.0.0.1:{port}", {}, verify=trusting(cert))
    assert secure(cookie), cookie
    assert page == static == "max-age=31536000"
