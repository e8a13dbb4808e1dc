# ruff: noqa: F811  (the tests take test_web_routes's `web` fixture, imported by name)
"""The panel's login and its guards, through an ASGI client (and the real server where the address
matters): X-Forwarded-For never picks the address the lockout counts unless from a trusted proxy,
login failures share the SMTP AUTH lockout, CSRF tokens on the login form and every other form, a
login posted from another site's page refused, security headers and cookie flags. Split from
test_web_routes.py by subject (it was over 400 lines)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from gateway.premium import handlers
from gateway.web.app import WebContext
from gateway.web.server import WebServer
from tests.test_web_routes import (
    routes,
    web,  # noqa: F401  (the fixture)
)
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    as_user,
    client,
    csrf_of,
    login,
    panel_store,
    web_context,
)


async def wrong_logins(tmp_path: Path, web_extra: str, forwarded: list[str]) -> tuple[WebContext, list[int]]:
    """Wrong passwords for ADMIN through the real server, one per X-Forwarded-For value given."""
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n' + web_extra)
    server = WebServer(web)
    port = await server.start()
    codes = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for address in forwarded:
                token = csrf_of((await c.get("/login")).text)
                data = {"email": ADMIN, "password": "wrong password", "csrf": token}
                r = await c.post("/login", data=data, headers={"X-Forwarded-For": address})
                codes.append(r.status_code)
    finally:
        await server.stop()
        web.counts.close()
        store.close()
    return web, codes


async def test_a_forwarded_for_header_does_not_pick_the_address_the_lockout_counts(tmp_path: Path) -> None:
    # Through the real server: uvicorn took X-Forwarded-For from 127.0.0.1 as the client's address,
    # so a new made-up address per guess never hit the per-address lock (and a victim's office
    # address could be locked out of the panel and of SMTP AUTH).
    web, codes = await wrong_logins(tmp_path, "", [f"198.51.100.{i}" for i in range(5)])
    assert codes[:2] == [401, 401] and 429 in codes, codes
    assert web.guard.pair_locked_for("127.0.0.1", ADMIN) > 0


async def test_a_trusted_proxys_forwarded_for_names_the_client(tmp_path: Path) -> None:
    # Behind a reverse proxy the admin names (`[web] trusted_proxies`), the client's own address
    # counts: one office's guesses do not lock every login through the proxy.
    web, codes = await wrong_logins(tmp_path, 'trusted_proxies = ["127.0.0.1"]\n', ["198.51.100.7"] * 3)
    assert codes == [401, 401, 429], codes
    assert web.guard.pair_locked_for("198.51.100.7", ADMIN) > 0
    assert web.guard.pair_locked_for("127.0.0.1", ADMIN) == 0


async def test_login_failures_share_the_smtp_auth_lockout(web: WebContext) -> None:
    async with client(web) as c:
        for _ in range(3):
            await login(c, ADMIN, "wrong password")
        # The right password is refused now too, by the same guard SMTP AUTH uses.
        r = await login(c, ADMIN)
        assert r.status_code == 429
        assert web.guard.pair_locked_for("127.0.0.1", ADMIN) > 0  # that login at that address
        # The lock list names a user's address as typed (an admin unlocks it by that address); a
        # login that names nobody would be shown masked.
        assert [lock["login"] for lock in web.guard.locks()] == [ADMIN.lower()]


async def test_login_form_needs_its_csrf_token(web: WebContext) -> None:
    async with client(web) as c:
        await c.get("/login")
        r = await c.post("/login", data={"email": ADMIN, "password": "correct horse 1", "csrf": "forged"})
        assert r.status_code == 403
        assert (await c.get("/")).status_code == 303


async def test_a_login_posted_from_another_sites_page_is_refused(web: WebContext) -> None:
    # Login CSRF: a page on another port of the panel's host set the pre-login cookie and posted its
    # own user's password with it: the operator's browser was logged in as the attacker's user.
    async with client(web) as c:
        token = (await c.get("/login")).cookies.get("smsgw_login") or c.cookies.get("smsgw_login")
        data = {"email": ADMIN, "password": "correct horse 1", "csrf": token}
        for site in ("same-site", "cross-site"):
            r = await c.post("/login", data=data, headers={"Sec-Fetch-Site": site})
            assert r.status_code == 403 and "from a page of another site" in r.text, site
            assert (await c.get("/")).status_code == 303  # not logged in
        r = await c.post("/login", data=data, headers={"Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 303 and (await c.get("/")).status_code == 200


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        forms = {
            "/users": {"action": "add", "email": "x@acme.example", "account": "acme"},
            "/account": {"split_mode": "separate", "dlr_mail": "all"},
            "/optouts": {"action": "add", "number": "+48601999999"},
            "/operator/accounts": {"action": "add", "name": "newco"},
            f"/messages/{web.store.mine}/hold": {},  # type: ignore[attr-defined]
            "/premium": {"password": "KP900", "account": "acme", "email": "x@acme.example"},
            "/logout": {},
        }
        assert sorted(forms) == sorted(routes(web, "POST")), "a new form: add it here"
        for path, data in forms.items():
            for token in ({}, {"csrf": "forged"}):
                r = await c.post(path, data={**data, **token})
                assert r.status_code == 403 and "form expired" in r.text, path
        assert web.store.accounts.find_user("x@acme.example") is None
        assert web.store.admin.message_info(web.store.mine)["state"] == "queued"  # type: ignore[attr-defined]
        assert handlers.repo(web.store).active_service("KP900") is None
        assert (await c.get("/")).status_code == 200  # still logged in: logout was refused too


async def test_security_headers_and_cookie_flags(web: WebContext) -> None:
    async with client(web) as c:
        page = await c.get("/login")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        r = await c.post(
            "/login", data={"email": ADMIN, "password": "correct horse 1", "csrf": csrf_of(page.text)}
        )
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        # One script, the panel's own file (static/forms.js, a refused login's address put back),
        # nothing inline: the pages work without it.
        scripts = re.findall(r"<script\b[^>]*>", (await c.get("/")).text)
        assert scripts == ['<script src="/static/forms.js" defer>'], scripts
