"""After a save: the panel answers 303 to the page, so that reloading it (or Back and Forward) shows the
result again instead of sending the form again ("user ... exists already", a bare "not found", the
browser's "Confirm Form Resubmission"). Also what the pages say about times, limits and cleared
settings, and what an unconfirmed premium service waits for."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from acl.lockout import AuthGuard
from gateway.config import parse_config
from gateway.web.app import WebContext
from tests.web_helpers import (
    ADMIN,
    HOST,
    OPERATOR,
    PLAIN,
    add_mail,
    as_user,
    csrf_of,
    seed_replies_and_premium,
    seeded_store,
)

SETTINGS = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}
PREMIUM = '[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "premium-ops@example.com"\n'


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = seeded_store(tmp_path)
    # A zone other than the default, so that the page is seen to say the configured one.
    cfg = parse_config(
        f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "{tmp_path}"\ntimezone = "America/Chicago"\n'
        f'[web]\nenabled = true\nhostnames = ["{HOST}", "panel"]\n{PREMIUM}',
        source="test",
        base_dir=tmp_path,
        links_required=False,
    )
    web = WebContext(cfg, store, AuthGuard(3, 300))
    yield web
    web.counts.close()
    store.close()


def _done(page: str) -> str:
    m = re.search(r'id="done">([^<]*)<', page)
    return html.unescape(m.group(1)) if m else ""


def _error(page: str) -> str:
    m = re.search(r'id="error">([^<]*)<', page)
    return html.unescape(m.group(1)) if m else ""


async def _saved(c: httpx.AsyncClient, r: httpx.Response, page: str, said: str) -> None:
    """A save answered 303 to `page` (a GET); the page says `said`, and says it again on a reload."""
    assert r.status_code == 303, _error(r.text)
    where = r.headers["location"]
    assert where.split("?")[0] == page and "done=" in where
    for _ in range(2):  # the page, then F5 on it
        shown = await c.get(where)
        assert shown.status_code == 200
        assert _done(shown.text) == said
        assert not _error(shown.text)


async def test_users_add_and_remove_answer_a_page_that_reloads_without_posting_again(web: WebContext) -> None:
    accounts = web.store.accounts
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        r = await c.post("/users", data={"csrf": token, "action": "add", "email": "new@acme.example"})
        await _saved(c, r, "/users", "user new@acme.example added to account acme")
        assert [u.email for u in accounts.list_users("acme")].count("new@acme.example") == 1
        data = {"csrf": token, "action": "remove", "email": "new@acme.example", "confirm": "yes"}
        await _saved(c, await c.post("/users", data=data), "/users", "user new@acme.example removed")
        assert accounts.find_user("new@acme.example") is None
        data = {"csrf": token, "action": "limits", "email": PLAIN, "monthly_limit": "40"}
        await _saved(c, await c.post("/users", data=data), "/users", f"user {PLAIN} updated")
        # A refused form still answers the page itself: the error, and the form as typed.
        r = await c.post("/users", data={"csrf": token, "action": "add", "email": "not an address"})
        assert r.status_code == 400 and "is not an email address" in _error(r.text)
        assert 'value="not an address"' in r.text


async def test_operator_stays_on_the_account_they_were_changing(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/users", params={"account": "rival"})).text)
        data = {"csrf": token, "action": "add", "account": "rival", "email": "second@rival.example"}
        r = await c.post("/users", params={"account": "rival"}, data=data)
        await _saved(c, r, "/users", "user second@rival.example added to account rival")
        assert "account=rival" in r.headers["location"]
        assert "<h1>Users of rival</h1>" in (await c.get(r.headers["location"])).text


async def test_account_settings_and_opt_outs_answer_a_page_that_reloads(web: WebContext) -> None:
    await web.store.write(lambda: add_mail(web.store, "acme", ADMIN, "+48601555666", "hello"))
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        r = await c.post("/account", data={**SETTINGS, "csrf": token, "bulk": "on"})
        await _saved(c, r, "/account", "account acme updated")
        assert web.store.accounts.get_account("acme").bulk
        r = await c.post("/optouts", data={"csrf": token, "action": "add", "number": "+48601555666"})
        await _saved(c, r, "/account", "+48601555666 is on the opt-out list")
        r = await c.post("/account", data={**SETTINGS, "csrf": token, "quiet_hours": "25-7"})
        assert r.status_code == 400 and _error(r.text).startswith("quiet hours")
        assert 'value="25-7"' in r.text


async def test_operator_account_create_answers_a_page_that_reloads(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        r = await c.post("/operator/accounts", data={"csrf": token, "action": "add", "name": "beta"})
        # R-3.2's note, as `smsgw account add` gives it: the panel said nothing of the shared number.
        shared = (
            "accounts acme, beta, rival all send from +48100200300 and [replies] pool is empty: a phone's"
            " answer goes to whoever texted it last, of any of these accounts; give each its own"
            " `smsgw account set NAME --sender …`, or set [replies] pool"
        )
        await _saved(c, r, "/operator/accounts", f"account beta added (networks: none) (note: {shared})")
        assert [a.name for a in web.store.accounts.list_accounts()].count("beta") == 1
        own = {"csrf": token, "action": "add", "name": "gamma", "sender": "+48500100200"}
        r = await c.post("/operator/accounts", data=own)
        await _saved(c, r, "/operator/accounts", "account gamma added (networks: none)")
        r = await c.post("/operator/accounts", data={"csrf": token, "action": "add", "name": "beta"})
        assert r.status_code == 400 and "exists already" in _error(r.text)


async def test_the_result_shown_never_comes_from_the_url(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c, as_user(web, ADMIN) as other:
        token = csrf_of((await c.get("/users")).text)
        r = await c.post("/users", data={"csrf": token, "action": "add", "email": "new@acme.example"})
        where = r.headers["location"]
        # Another session (a link someone sent) shows nothing for the same key.
        shown = await other.get(where)
        assert shown.status_code == 200 and not _done(shown.text)
        for made_up in ("<script>alert(1)</script>", "user ceo@acme.example removed", ""):
            page = (await c.get("/users", params={"done": made_up})).text
            assert 'id="done"' not in page and "<script>alert" not in page and "ceo@" not in page


async def test_every_page_says_the_zone_of_its_times_once(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for path in ("/", "/messages", "/users", "/account", "/operator/accounts", "/premium"):
            page = (await c.get(path)).text
            assert page.count('id="zone"') == 1, path
            assert "Times in America/Chicago" in page, path


async def test_no_limit_is_said_so_on_the_admins_account_page(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        said = re.search(r'<p id="limits">(.*?)</p>', (await c.get("/account")).text)
        assert said and "none" not in said.group(1)
        assert said.group(1).endswith("no monthly limit, no daily limit.")
        await web.store.write(lambda: web.store.accounts.update_account("acme", monthly_limit=500))
        said = re.search(r'<p id="limits">(.*?)</p>', (await c.get("/account")).text)
        assert said and said.group(1).endswith("500 parts a month, no daily limit.")


async def test_the_audit_trail_says_a_setting_was_cleared(web: WebContext) -> None:
    await web.store.write(
        lambda: web.store.accounts.update_account("acme", notify_address="ops@acme.example")
    )
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/account")).text)
        r = await c.post("/account", data={**SETTINGS, "csrf": token, "notify_address": ""})
        assert r.status_code == 303
        page = (await c.get("/operator/accounts")).text
    assert web.store.accounts.get_account("acme").notify_address is None
    assert "notify_address cleared" in page and "=None" not in page


async def test_an_unconfirmed_premium_service_says_what_it_waits_for(web: WebContext) -> None:
    await web.store.write(lambda: seed_replies_and_premium(web.store))
    async with as_user(web, ADMIN) as c:
        page = html.unescape((await c.get("/premium")).text)
        assert f"until {ADMIN} replies to the confirmation mail" in page
        assert "the gateway's operator can mail a new one" in page
    async with as_user(web, OPERATOR) as c:
        page = html.unescape((await c.get("/premium")).text)
        assert "smsgw premium verify KP100 --resend" in page


async def test_a_premium_service_added_answers_a_page_that_reloads(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/premium")).text)
        data = {"csrf": token, "password": "KP301", "account": "acme", "email": "votes@acme.example"}
        r = await c.post("/premium", data={**data, "number": "7355"})
        assert r.status_code == 303, _error(r.text)
        shown = await c.get(r.headers["location"])
        said = _done(shown.text)
        assert said.startswith("premium service KP301 added for account acme, numbers 7355;"), said
        assert _done((await c.get(r.headers["location"])).text) == said  # F5: said again, not added again
        assert len([s for s in web.store.db.conn.execute("SELECT id FROM premium_services")]) == 1
        r = await c.post("/premium", data={**data, "number": "7355"})
        assert r.status_code == 400 and "password KP301 is taken" in _error(r.text)


async def test_an_account_added_in_the_panel_gets_the_clis_notes(web: WebContext) -> None:
    """A name differing in case only from another's, and a sender phones cannot answer: the CLI
    said both, the panel only "account Acme added"."""
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        data = {"csrf": token, "action": "add", "name": "Acme", "sender": "AcmeShop"}
        r = await c.post("/operator/accounts", data=data)
        said = _done((await c.get(r.headers["location"])).text)
        assert said.startswith("account Acme added (networks: none) (note: account 'acme' exists"), said
        assert "its name differing in case only" in said
        assert "sender 'AcmeShop' is alphanumeric: phones cannot answer it" in said
        # A sender of its own: no note at all, not even the shared number's.
        own = {"csrf": token, "action": "add", "name": "gamma", "sender": "+48500100200"}
        r = await c.post("/operator/accounts", data=own)
        assert _done((await c.get(r.headers["location"])).text) == "account gamma added (networks: none)"
