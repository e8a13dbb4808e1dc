"""Over HTTPS the panel's cookies are `__Host-` ones, and only those are read.

A page of a sibling host (another name under the panel's site) could set a plain `smsgw_session` for
the whole site (Domain=example.com): the admin's browser then sent the attacker's session to the
panel, and the admin worked in it (login CSRF), or a pre-login token of the attacker's choosing. A
browser keeps a `__Host-` cookie only Secure, with Path=/ and no Domain, which no other host can set.
Over plain HTTP a browser refuses the prefix, so the plain names stay there. Through the real server
on its own TLS, as a browser reaches it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.web.security import LOGIN_COOKIE, SESSION_COOKIE
from tests.certs import make_cert_pair
from tests.test_web_sessions import served, trusting
from tests.web_helpers import ADMIN, PASSWORD, csrf_of


@asynccontextmanager
async def https_panel(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the panel over its own TLS; cookies are sent by hand (`cookie` header), no jar."""
    cert, key = make_cert_pair(tmp_path / "tls")
    async with served(tmp_path, f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n') as port:
        transport = httpx.AsyncHTTPTransport(verify=trusting(cert))
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", transport=transport) as c:
            yield c


def set_cookies(r: httpx.Response) -> dict[str, list[str]]:
    """Each Set-Cookie by its name: its attributes, lowercased."""
    found: dict[str, list[str]] = {}
    for value in r.headers.get_list("set-cookie"):
        name, _, rest = value.partition("=")
        found[name] = [p.strip().lower() for p in rest.split(";")[1:]]
    return found


def host_only(attributes: list[str]) -> bool:
    """What a browser needs to keep a `__Host-` cookie: Secure, Path=/, no Domain."""
    return (
        "secure" in attributes
        and "path=/" in attributes
        and not any(a.startswith("domain") for a in attributes)
    )


async def login_page(c: httpx.AsyncClient) -> tuple[str, str]:
    """The pre-login cookie's value and the form's token."""
    page = await c.get("/login")
    assert page.status_code == 200
    value = re.search(rf"__Host-{LOGIN_COOKIE}=([^;]+)", page.headers["set-cookie"])
    assert value, page.headers["set-cookie"]
    return value.group(1), csrf_of(page.text)


async def test_over_https_the_cookies_are_host_only_and_planted_plain_ones_are_nobodys(
    tmp_path: Path,
) -> None:
    async with https_panel(tmp_path) as c:
        page = await c.get("/login")
        cookies = set_cookies(page)
        assert list(cookies) == [f"__Host-{LOGIN_COOKIE}"] and host_only(cookies[f"__Host-{LOGIN_COOKIE}"])
        held, token = await login_page(c)
        data = {"email": ADMIN, "password": PASSWORD, "csrf": token}
        # A pre-login token planted under the plain name (a sibling host's, of the attacker's choosing)
        # is not the form's: the form expired.
        r = await c.post("/login", data=data, headers={"cookie": f"{LOGIN_COOKIE}={token}"})
        assert r.status_code == 403 and "the form expired" in r.text
        r = await c.post("/login", data=data, headers={"cookie": f"__Host-{LOGIN_COOKIE}={held}"})
        assert r.status_code == 303, r.text
        cookies = set_cookies(r)
        assert host_only(cookies[f"__Host-{SESSION_COOKIE}"])
        assert (
            host_only(cookies[f"__Host-{LOGIN_COOKIE}"]) and "max-age=0" in cookies[f"__Host-{LOGIN_COOKIE}"]
        )
        assert SESSION_COOKIE not in cookies and LOGIN_COOKIE not in cookies
        session = next(
            v.partition(";")[0].partition("=")[2]
            for v in r.headers.get_list("set-cookie")
            if v.startswith(f"__Host-{SESSION_COOKIE}=")
        )
        # The session under its own name: in. The same token under the plain name, as a sibling host
        # plants its own session in the admin's browser: nobody's, the login page.
        own = await c.get("/", headers={"cookie": f"__Host-{SESSION_COOKIE}={session}"})
        assert own.status_code == 200
        planted = await c.get("/", headers={"cookie": f"{SESSION_COOKIE}={session}"})
        assert planted.status_code == 303 and planted.headers["location"].startswith("/login")
        # The logout deletes the cookie as it was set: a `__Host-` one goes only with Secure and Path=/.
        csrf = csrf_of(own.text)
        r = await c.post(
            "/logout", data={"csrf": csrf}, headers={"cookie": f"__Host-{SESSION_COOKIE}={session}"}
        )
        assert r.status_code == 303
        gone = set_cookies(r)[f"__Host-{SESSION_COOKIE}"]
        assert host_only(gone) and "max-age=0" in gone


async def test_over_plain_http_the_names_stay_plain(tmp_path: Path) -> None:
    async with served(tmp_path, "") as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        page = await c.get("/login")
        cookies = set_cookies(page)
        assert list(cookies) == [LOGIN_COOKIE] and "secure" not in cookies[LOGIN_COOKIE]
        r = await c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert SESSION_COOKIE in set_cookies(r) and (await c.get("/")).status_code == 200
