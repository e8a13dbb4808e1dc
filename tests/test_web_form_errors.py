"""A refused form marks the field it is about, keeps what was typed, and survives a session's end.

Only the add-user form marked its field (aria-invalid, aria-describedby="error"): every other form a
save refuses left a screen-reader user guessing which field was wrong, and the login forgot the
address typed. A form sent after the session had ended answered a bare "please log in" page: the
admin logged in on the dashboard and typed the whole form again. Through the panel's app (ASGI
client) on a real SQLite store; the browser's side is tests/test_web_browser_forms.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.web.app import WebContext
from gateway.web.security import SESSION_COOKIE
from tests.web_helpers import ADMIN, HOST, OPERATOR, PLAIN, as_user, client, csrf_of, panel_store, web_context

PREMIUM = '[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "premium-ops@example.com"\n'
SETTINGS = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}
TAG = re.compile(r"<(?:input|select|textarea|fieldset)\b[^>]*>")


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, PREMIUM)
    yield web
    web.counts.close()
    store.close()


def marked(page: str) -> list[str]:
    """The name (or id, for a fieldset) of every field the page marks invalid; each must point at the
    error, which must be there as an alert."""
    names = []
    for tag in TAG.findall(page):
        if 'aria-invalid="true"' in tag:
            assert 'aria-describedby="error"' in tag, tag
            m = re.search(r' name="([^"]+)"', tag) or re.search(r"<(fieldset)", tag)
            assert m, tag
            names.append(m.group(1))
    if names:
        assert re.search(r'<p class="error" role="alert"[^>]* id="error">', page), page
    return names


def field(page: str, name: str, near: str = "") -> str:
    """The tag of the field `name` (the first after `near`)."""
    start = page.index(near) if near else 0
    m = re.search(rf'<(?:input|select|textarea)\b[^>]* name="{name}"[^>]*>', page[start:])
    assert m, name
    return m.group(0)


async def post(c: httpx.AsyncClient, path: str, page: str, data: dict[str, str]) -> httpx.Response:
    return await c.post(path, data={"csrf": csrf_of((await c.get(page)).text), **data})


async def test_account_settings_mark_the_refused_field_and_keep_the_form(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for name, value in (
            ("quiet_hours", "25:00-99"),
            ("end_marker", "a\nb"),
            ("notify_address", "nobody"),
            ("monthly_limit", "lots"),
            ("countries", "XX"),
            ("billing_to", "not an address"),
            ("cut_from", "short"),
        ):
            typed = {**SETTINGS, "bulk": "on", "sender": "ACME", name: value}
            r = await post(c, "/account", "/account", typed)
            assert r.status_code == 400, (name, r.text)
            assert marked(r.text) == [name], (name, marked(r.text))
            assert 'value="ACME"' in field(r.text, "sender")  # the rest as typed
            assert " checked" in field(r.text, "bulk")
        # The form damaged on its way (its stamp): about the whole form, no field marked.
        r = await post(c, "/account", "/account", {**SETTINGS, "loaded": "{not json"})
        assert r.status_code == 400 and "damaged" in r.text and marked(r.text) == []


async def test_opt_out_forms_mark_their_own_field(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        r = await post(c, "/optouts", "/account", {"action": "add", "number": "not a number"})
        assert r.status_code == 400 and marked(r.text) == ["number"]
        assert 'value="not a number"' in field(r.text, "number", "Number to opt out")
        r = await post(c, "/optouts", "/account", {"action": "remove", "number": "+48602000002"})
        assert r.status_code == 400 and marked(r.text) == ["confirm"]
        box = field(r.text, "confirm", 'value="+48602000002"')
        assert 'aria-invalid="true"' in box  # the row's box, not the settings' "confirm"
    async with as_user(web, ADMIN) as c:  # a number the account never wrote to: 403, kept, marked
        r = await post(c, "/optouts", "/account", {"action": "add", "number": "+48609999999"})
        assert r.status_code == 403 and marked(r.text) == ["number"] and 'value="+48609999999"' in r.text


async def test_user_rows_mark_the_field_of_the_row(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        row = f'data-email="{PLAIN}"'
        for data, name in (
            ({"action": "limits", "monthly_limit": "12", "daily_limit": "lots"}, "daily_limit"),
            ({"action": "password", "password": "short"}, "password"),
            ({"action": "role", "role": "king"}, "role"),
            ({"action": "remove"}, "confirm"),
        ):
            r = await post(c, "/users", "/users", {**data, "email": PLAIN})
            assert r.status_code == 400 and marked(r.text) == [name], (data, marked(r.text))
            assert 'aria-invalid="true"' in field(r.text, name, row)  # in the row refused
        limits = {"action": "limits", "email": PLAIN, "monthly_limit": "12", "daily_limit": "x"}
        r = await post(c, "/users", "/users", limits)
        assert 'value="12"' in field(r.text, "monthly_limit", row)
        assert "short" not in field(r.text, "password", row)  # a password never comes back
        r = await post(c, "/users", "/users", {"action": "add", "email": "x@sms.example.com"})
        assert marked(r.text) == ["email"] and 'value="x@sms.example.com"' in field(
            r.text, "email", 'id="add-user"'
        )
        # About the whole form: the operator's own login, which no field can change.
        r = await post(c, "/users", "/users", {"action": "remove", "email": OPERATOR, "confirm": "yes"})
        assert r.status_code == 400 and "your own login" in r.text and marked(r.text) == []


async def test_new_account_suspension_and_premium_mark_their_field(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        new = {"action": "add", "name": "newco", "sender": "NEWCO", "networks": "10.0.0.0/8, nonsense"}
        r = await post(c, "/operator/accounts", "/operator/accounts", new)
        assert r.status_code == 400 and marked(r.text) == ["networks"], r.text
        assert 'value="NEWCO"' in field(r.text, "sender", 'id="add-account"')
        r = await post(c, "/operator/accounts", "/operator/accounts", {**new, "name": "acme", "networks": ""})
        assert marked(r.text) == ["name"]
        r = await post(c, "/operator/accounts", "/operator/accounts", {**new, "name": "#bad", "networks": ""})
        assert marked(r.text) == ["name"] and 'value="#bad"' in r.text
        suspend = {"action": "suspend", "name": "rival", "reason": "unpaid invoice"}
        r = await post(c, "/operator/accounts", "/operator/accounts", suspend)
        assert r.status_code == 400 and marked(r.text) == ["confirm"]
        assert 'value="unpaid invoice"' in field(r.text, "reason", 'data-account="rival"')
        service = {"password": "KP555", "email": "not an address", "reply_acl": "", "account": "acme"}
        r = await post(c, "/premium", "/premium", service)
        assert r.status_code == 400 and marked(r.text) == ["email"], r.text
        assert 'value="KP555"' in field(r.text, "password", 'id="add-service"')
        r = await post(
            c, "/premium", "/premium", {**service, "email": "ops@example.com", "password": "KP100"}
        )
        assert r.status_code == 400 and "taken" in r.text and marked(r.text) == ["password"]
        r = await post(c, "/premium", "/premium", {**service, "email": "ops@example.com", "number": "9999"})
        assert r.status_code == 400 and marked(r.text) == ["fieldset"]  # the numbers ticked
        r = await c.get("/premium?month=2026-13")
        assert r.status_code == 400 and marked(r.text) == ["month"]


async def test_cancel_searches_and_login_mark_or_keep(web: WebContext) -> None:
    mine = web.store.mine  # type: ignore[attr-defined]
    async with as_user(web, OPERATOR) as c:
        r = await post(c, f"/messages/{mine}/cancel", f"/messages/{mine}", {})
        assert r.status_code == 400 and marked(r.text) == ["confirm"]
        for query, name in (("number=abc", "number"), ("user=anna", "user"), ("from=2026-02-30", "from")):
            r = await c.get(f"/messages?{query}")
            assert r.status_code == 400 and marked(r.text) == [name], query
        r = await c.get("/messages?before=x")  # an edited URL: no field of the form
        assert r.status_code == 400 and marked(r.text) == []
        r = await c.get("/conversations?phone=abc")
        assert r.status_code == 400 and marked(r.text) == ["phone"]
    async with client(web) as c:
        page = await c.get("/login")
        data = {"email": ADMIN, "password": "not the password 1", "csrf": csrf_of(page.text)}
        r = await c.post("/login", data=data)
        assert r.status_code == 401 and marked(r.text) == []  # which of the two is wrong stays unsaid
        assert "not the password 1" not in r.text  # the address comes back by static/forms.js


async def test_a_form_sent_after_the_session_ended_goes_to_the_login_and_back(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        web.sessions.end_login(ADMIN)  # as the idle time does it (tests/test_web_sessions.py)
        referer = {"referer": f"http://{HOST}/account?done=x1"}
        data = {**SETTINGS, "csrf": token, "end_marker": "-- bye", "password": "never shown"}
        r = await c.post("/account", data=data, headers=referer)
        assert r.status_code == 401
        assert "your session had ended, so the form was not sent: please log in, then send it again" in r.text
        assert "data-session-ended" in r.text and 'name="next" value="/account?done=x1"' in r.text
        assert "never shown" not in r.text and "-- bye" not in r.text
        assert web.store.accounts.get_account("acme").end_marker is None  # nothing saved
        assert '<script src="/static/forms.js" defer></script>' in r.text
        login = {"email": ADMIN, "password": "correct horse 1", "csrf": csrf_of(r.text), "next": "/account"}
        back = await c.post("/login", data=login)
        assert back.status_code == 303 and back.headers["location"] == "/account"
        # A page of another site as the Referer, with the ended session's cookie (a same-site page's
        # form carries it): back to the page the form was posted to, never there.
        c.cookies.set(SESSION_COOKIE, "ended long ago")
        r = await c.post("/account", data=data, headers={"referer": "http://elsewhere.example/account"})
        assert r.status_code == 401 and 'name="next" value="/account"' in r.text and "elsewhere" not in r.text
    async with client(web) as c:
        script = await c.get("/static/forms.js")
        assert script.status_code == 200 and "sessionStorage" in script.text
        # It keeps a refused login's address, nothing else: what a form held is kept on the server, for
        # its own user (tests/test_web_kept_forms.py), never in a browser another login may use.
        assert (
            script.text.count("setItem(") == 1 and "setItem(LOGIN, form.elements.email.value)" in script.text
        )


ELSEWHERE = (
    {"sec-fetch-site": "cross-site", "origin": "https://attacker.example"},
    {"origin": "https://attacker.example"},  # a browser that sends no Sec-Fetch-Site
    {"referer": "https://attacker.example/page"},  # nor Origin
)


@pytest.mark.parametrize("headers", ELSEWHERE)
async def test_a_form_from_another_site_is_said_to_be_that_not_an_ended_session(
    web: WebContext, headers: dict[str, str]
) -> None:
    # Another site's page posts the panel's form: the browser sends no session cookie with it
    # (SameSite=Strict), though the admin is logged in in that browser. "Your session had ended"
    # (401) sent them to log in again for nothing; it is now said for what it is, 403, nothing done.
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        session = c.cookies[SESSION_COOKIE]
        c.cookies.delete(SESSION_COOKIE)
        data = {**SETTINGS, "csrf": token, "end_marker": "-- planted"}
        r = await c.post("/account", data=data, headers=headers)
        assert r.status_code == 403, r.text
        assert "this form came from a page of another site, so it was not sent" in r.text
        assert "session had ended" not in r.text and "data-session-ended" not in r.text
        assert web.store.accounts.get_account("acme").end_marker is None
        c.cookies.set(SESSION_COOKIE, session)  # the admin's session went on all along
        assert (await c.get("/account")).status_code == 200
        # Posted from the panel's own page with no cookie (the browser dropped it): the session's end.
        c.cookies.delete(SESSION_COOKIE)
        own = {
            "sec-fetch-site": "same-origin",
            "origin": f"http://{HOST}",
            "referer": f"http://{HOST}/account",
        }
        r = await c.post("/account", data=data, headers=own)
        assert r.status_code == 401 and "your session had ended, so the form was not sent" in r.text


async def test_an_address_at_a_domain_another_account_holds_is_refused_on_the_users_page(
    web: WebContext,
) -> None:
    # Refused with a bare 403 page: the admin lost the address typed and the page it was typed on.
    accounts = web.store.accounts
    await web.store.write(lambda: accounts.add_user("first@shared.example", "rival"))  # rival holds it
    await web.store.write(lambda: accounts.add_user("later@shared.example", "acme"))  # acme has it too
    async with as_user(web, ADMIN) as c:
        r = await post(c, "/users", "/users", {"action": "add", "email": "new@shared.example"})
    assert r.status_code == 400, r.text
    assert "addresses at shared.example are added by another account&#39;s admin" in r.text, r.text
    assert marked(r.text) == ["email"], marked(r.text)
    (typed,) = [t for t in TAG.findall(r.text) if 'id="new-email"' in t]
    assert 'value="new@shared.example"' in typed and 'aria-invalid="true"' in typed, typed
    assert accounts.find_user("new@shared.example") is None
