"""A form posted after the panel session ran out is kept for its own user's next login, and only theirs.

An admin filled the account's settings (or a user's limits), went to lunch, pressed Save: the login
page, and what they had typed was gone (kept only by a script in that tab, which put it back into
the form of whoever logged in next there). Now the server keeps it, bound to the session's user,
for minutes, and the form's page after that user's login shows it filled in again, to be sent again
by hand with the new session's token. Through the real server on 127.0.0.1 with a real HTTP client;
the forms are read and filled as a browser does (lxml's form values); the time is the store's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest

from gateway.web import keptforms, security
from gateway.web.app import WebContext
from gateway.web.security import SESSION_COOKIE
from gateway.web.server import WebServer
from tests.web_helpers import ADMIN, OPERATOR, PASSWORD, PLAIN, csrf_of, panel_store, web_context

LUNCH = 90.0  # minutes away, well past the idle time
TYPED = "-- sent from the lunch-time draft"
CUT = "Ta wiadomość jest poufna i przeznaczona\nConfidentiality notice: this message"


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[WebContext, Clock, str]]:
    store = panel_store(tmp_path)
    clock = Clock()
    store.clock = clock  # the sessions and the kept forms take the store's clock, as in the daemon
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(web)
    port = await server.start()
    try:
        yield web, clock, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        web.counts.close()
        store.close()


def form_of(page: str, attrs: dict[str, str] | None = None, **fields: str) -> Any:
    """The page's one form with these attributes (its id, action) and field values (a row's hidden
    keys), as lxml reads it."""
    forms = [
        f
        for f in lxml.html.fromstring(page).forms
        if all(f.get(k) == v for k, v in (attrs or {}).items())
        and all(n in f.fields and f.fields[n] == v for n, v in fields.items())
    ]
    assert len(forms) == 1, (attrs, fields)
    return forms[0]


async def log_in(c: httpx.AsyncClient, email: str, page: str | None = None) -> httpx.Response:
    """The login form as a browser sends it: the page given (the one the form post got), or a new one."""
    text = page if page is not None else (await c.get("/login")).text
    form = form_of(text, {"action": "/login"})
    form.fields["email"], form.fields["password"] = email, PASSWORD
    return await c.post("/login", data=dict(form.form_values()))


def fill_settings(page: str) -> dict[str, Any]:
    form = form_of(page, {"id": "settings"})
    form.fields["end_marker"] = TYPED
    form.fields["cut_from"] = CUT
    form.fields["quiet_hours"] = "21:30-07:15"
    form.fields["dlr_mail"] = "failed"
    form.inputs["bulk"].checked = True
    return dict(form.form_values())


def shown(page: str) -> dict[str, Any]:
    return dict(form_of(page, {"id": "settings"}).form_values())


async def post_after_lunch(
    c: httpx.AsyncClient, clock: Clock, base: str, path: str, data: dict[str, Any]
) -> httpx.Response:
    clock.advance(LUNCH)
    r = await c.post(path, data=data, headers={"referer": base + path})
    assert r.status_code == 401 and "your session had ended, so the form was not sent" in r.text
    return r


async def test_a_form_posted_after_lunch_is_back_after_the_login_and_sent_only_by_hand(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        typed = fill_settings((await c.get("/account")).text)
        r = await post_after_lunch(c, clock, base, "/account", typed)
        assert 'name="kept"' in r.text and 'id="kept"' in r.text and TYPED not in r.text
        assert web.store.accounts.get_account("acme").end_marker is None  # nothing saved
        clock.advance(5)  # finding the password
        back = await log_in(c, ADMIN, r.text)
        assert back.status_code == 303 and back.headers["location"] == "/account"
        assert web.store.accounts.get_account("acme").end_marker is None  # the login replays nothing
        page = (await c.get("/account")).text
        assert 'id="restored"' in page and "data-restored" in page
        again = shown(page)
        for name in ("end_marker", "cut_from", "quiet_hours", "dlr_mail", "bulk", "loaded"):
            assert again.get(name) == typed[name], name
        assert again["csrf"] != typed["csrf"]  # the new session's token
        # The old session's token is no good for it: a fresh session and its own token, or nothing.
        refused = await c.post("/account", data={**again, "csrf": typed["csrf"]})
        assert refused.status_code == 403 and web.store.accounts.get_account("acme").end_marker is None
        assert 'id="restored"' not in (await c.get("/account")).text  # shown once
        saved = await c.post("/account", data=again)  # the user presses Save again
        assert saved.status_code == 303
        acc = web.store.accounts.get_account("acme")
        assert (acc.end_marker, acc.quiet_start, acc.quiet_end, acc.bulk) == (TYPED, "21:30", "07:15", 1)
    out, err = capfd.readouterr()
    assert TYPED not in out + err and "lunch-time" not in out + err  # never in the logs


async def test_someone_else_logging_in_on_that_browser_never_sees_it(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        r = await post_after_lunch(c, clock, base, "/account", fill_settings((await c.get("/account")).text))
        # The operator (who opens the same account's page) logs in on that browser, with that page.
        assert (await log_in(c, OPERATOR, r.text)).status_code == 303
        page = (await c.get("/account")).text
        assert TYPED not in page and 'id="restored"' not in page
        assert len(web.sessions.kept) == 0  # dropped, not left for a later login
        await c.post("/logout", data={"csrf": csrf_of(page)})
        # Then its owner, with the token that page carried on a new login form: it is gone.
        fresh = dict(form_of((await c.get("/login")).text, {"action": "/login"}).form_values())
        kept = form_of(r.text, {"action": "/login"}).fields["kept"]
        data = {**fresh, "email": ADMIN, "password": PASSWORD, "kept": kept}
        assert (await c.post("/login", data=data)).status_code == 303
        assert TYPED not in (await c.get("/account")).text


async def test_a_kept_form_lasts_minutes_and_holds_no_password(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        r = await post_after_lunch(c, clock, base, "/account", fill_settings((await c.get("/account")).text))
        clock.advance(keptforms.KEEP_MINUTES + 1)  # the login page left open too long
        assert (await log_in(c, ADMIN, r.text)).status_code == 303
        assert TYPED not in (await c.get("/account")).text

        # A user's password form, with the admin's own password for sudo: neither is kept.
        users = (await c.get("/users")).text
        form = form_of(users, action="password", email=PLAIN)
        data = {**dict(form.form_values()), "password": "new anna secret 9", "current_password": PASSWORD}
        r = await post_after_lunch(c, clock, base, "/users", data)
        assert 'name="kept"' in r.text
        [kept] = web.sessions.kept._by_token.values()
        assert {"password", "current_password", "csrf"}.isdisjoint(n for n, _ in kept.fields), kept.fields
        assert "new anna secret 9" not in repr(kept) and PASSWORD not in repr(kept)


async def test_a_row_form_comes_back_in_its_own_row(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        users = (await c.get("/users")).text
        form = form_of(users, action="limits", email=PLAIN)
        form.fields["monthly_limit"], form.fields["daily_limit"] = "777", "55"
        r = await post_after_lunch(c, clock, base, "/users", dict(form.form_values()))
        assert (await log_in(c, ADMIN, r.text)).status_code == 303
        page = (await c.get("/users")).text
        assert page.count('value="777"') == 1 and page.count("data-restored") == 1
        values = dict(form_of(page, action="limits", email=PLAIN).form_values())
        assert (values["monthly_limit"], values["daily_limit"]) == ("777", "55")
        assert web.store.accounts.find_user(PLAIN).monthly_limit is None  # not sent by itself
        assert (await c.post("/users", data=values)).status_code == 303
        assert web.store.accounts.find_user(PLAIN).monthly_limit == 777


async def test_what_is_not_kept(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        typed = fill_settings((await c.get("/account")).text)
        # A form over the bound: not kept, and the page does not say it is.
        big = {**typed, "cut_from": "x" * (keptforms.MAX_CHARS + 1)}
        r = await post_after_lunch(c, clock, base, "/account", big)
        assert 'name="kept"' not in r.text and 'id="kept"' not in r.text
        # One user's forms: the oldest goes past the bound.
        assert (await log_in(c, ADMIN, r.text)).status_code == 303
        typed = fill_settings((await c.get("/account")).text)  # the new session's token
        pages = [await post_after_lunch(c, clock, base, "/account", typed)]
        for _ in range(keptforms.MAX_PER_USER):
            clock.advance(-LUNCH)  # the same lapsed session, posted again a moment later
            pages.append(await post_after_lunch(c, clock, base, "/account", typed))
        assert len(web.sessions.kept) == keptforms.MAX_PER_USER
        assert (await log_in(c, ADMIN, pages[0].text)).status_code == 303
        assert TYPED not in (await c.get("/account")).text  # the first one went
        # A session ended by its logout, or unknown: no owner to keep it for.
        token = c.cookies[SESSION_COOKIE]
        await c.post("/logout", data={"csrf": csrf_of((await c.get("/account")).text)})
        for cookie in (token, "not-a-session"):
            c.cookies.set(SESSION_COOKIE, cookie)
            r = await c.post("/account", data=typed, headers={"referer": base + "/account"})
            assert r.status_code == 401 and 'name="kept"' not in r.text
        # One that ran out longer ago than its owner is remembered.
        c.cookies.delete(SESSION_COOKIE)
        assert (await log_in(c, ADMIN)).status_code == 303
        typed = fill_settings((await c.get("/account")).text)
        clock.advance(security.LAPSED_HOURS * 60 + security.IDLE_MINUTES)
        r = await post_after_lunch(c, clock, base, "/account", typed)
        assert 'name="kept"' not in r.text
