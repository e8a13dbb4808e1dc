"""A panel link opened while logged out (a link from a mail, a bookmark, a page left open past the idle
logout) leads through the login to that page, never off the panel; and the error pages of a logged-in
admin keep the menu."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, PASSWORD, add_mail, as_user, client, csrf_of, seeded_store, web_context


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = seeded_store(tmp_path)
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()
    store.close()


async def _log_in(c: httpx.AsyncClient, login_page: str, nxt: str | None = None) -> httpx.Response:
    """Logs in from the page `login_page` (a path with its query), posting what its form holds."""
    page = await c.get(login_page)
    assert page.status_code == 200
    data = {"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)}
    if nxt is not None:
        data["next"] = nxt
    elif 'name="next"' in page.text:
        data["next"] = page.text.split('name="next" value="')[1].split('"')[0].replace("&amp;", "&")
    return await c.post("/login", data=data)


async def test_a_link_opened_logged_out_leads_through_the_login_to_it(web: WebContext) -> None:
    mid = await web.store.write(lambda: add_mail(web.store, "acme", ADMIN, "+48601000001", "hello"))
    async with client(web) as c:
        r = await c.get(f"/messages/{mid}")
        assert r.status_code == 303 and r.headers["location"] == f"/login?next=/messages/{mid}"
        r = await _log_in(c, r.headers["location"])
        assert r.status_code == 303 and r.headers["location"] == f"/messages/{mid}"
        assert (await c.get(r.headers["location"])).status_code == 200
    async with client(web) as c:  # a search keeps its query
        r = await c.get("/messages?state=failed&number=601000001")
        r = await _log_in(c, r.headers["location"])
        assert r.headers["location"] == "/messages?state=failed&number=601000001"
    async with client(web) as c:  # the login page opened by itself goes to the dashboard
        assert (await _log_in(c, "/login")).headers["location"] == "/"


async def test_a_failed_login_keeps_where_it_was_going(web: WebContext) -> None:
    async with client(web) as c:
        page = await c.get("/login?next=/users")
        data = {"email": ADMIN, "password": "wrong password", "csrf": csrf_of(page.text), "next": "/users"}
        r = await c.post("/login", data=data)
        assert r.status_code == 401 and 'name="next" value="/users"' in r.text


@pytest.mark.parametrize(
    "elsewhere",
    [
        "//evil.example",
        "//evil.example/users",
        "https://evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\\evil.example",
        "/\t/evil.example",  # browsers drop the tab: //evil.example
        "/\r\nSet-Cookie: x=1",
        "/ /evil.example",
        "evil.example",
        "/" + "a" * 3000,
    ],
)
async def test_a_login_never_leads_off_the_panel(web: WebContext, elsewhere: str) -> None:
    async with client(web) as c:
        page = await c.get("/login", params={"next": elsewhere})
        assert 'name="next"' not in page.text  # not even carried in the form
        r = await _log_in(c, "/login", nxt=elsewhere)  # a form made elsewhere
        assert r.status_code == 303 and r.headers["location"] == "/"


async def test_error_pages_of_a_logged_in_admin_keep_the_menu(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        for method, path, code in (("GET", "/no-such-page", 404), ("GET", "/logout", 405)):
            r = await c.request(method, path)
            assert r.status_code == code, path
            assert 'id="whoami"' in r.text and 'href="/messages"' in r.text, path
            assert 'href="/login"' not in r.text, path
    async with client(web) as c:  # logged out: no menu, and the way to log in
        r = await c.get("/no-such-page")
        assert r.status_code == 404 and 'id="whoami"' not in r.text and 'href="/login"' in r.text


async def test_the_login_page_of_a_logged_in_admin_goes_on_to_the_panel(web: WebContext) -> None:
    """It showed the login form, as if the session had ended."""
    async with as_user(web, ADMIN) as c:
        r = await c.get("/login")
        assert r.status_code == 303 and r.headers["location"] == "/"
        r = await c.get("/login?next=/messages")
        assert r.status_code == 303 and r.headers["location"] == "/messages"
        r = await c.get("/login?next=//evil.example")
        assert r.status_code == 303 and r.headers["location"] == "/"
    async with client(web) as c:  # logged out: the form
        r = await c.get("/login")
        assert r.status_code == 200 and 'name="password"' in r.text
