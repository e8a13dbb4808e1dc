"""Every form the panel refuses names the field it refused, and the page marks that field and keeps the rest.

A screen-reader user (and anyone on a long form) must not guess which field was wrong: the field at
fault carries aria-invalid="true" and aria-describedby="error" (the alert saying why), the others
keep what was typed. The refusals tests/test_web_form_errors.py does not walk through are here,
each as its form posts it, through the panel's app (ASGI client) on a real SQLite store.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.web.app import WebContext
from tests.test_web_form_errors import PREMIUM, SETTINGS, field, marked, post
from tests.web_helpers import ADMIN, OPERATOR, as_user, panel_store, web_context


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, PREMIUM)
    yield web
    web.counts.close()
    store.close()


def said(page: str) -> str:
    m = re.search(r'<p class="error" role="alert"[^>]* id="error">([^<]*)</p>', page)
    assert m, page
    return m.group(1)


async def test_own_role_marks_the_role_of_the_row(web: WebContext) -> None:
    # Refused with no field marked: the admin's own row's role select was not said to be at fault.
    for who in (OPERATOR, ADMIN):
        async with as_user(web, who) as c:
            r = await post(c, "/users", "/users", {"action": "role", "email": who, "role": "user"})
        assert r.status_code == 400 and "you cannot change your own role" in said(r.text)
        assert marked(r.text) == ["role"], (who, marked(r.text))
        select = field(r.text, "role", f'data-email="{who}"')
        assert 'aria-invalid="true"' in select and 'aria-describedby="error"' in select
        start = r.text.index(f'data-email="{who}"')
        own = r.text[start : r.text.index("</tr>", start)]
        assert "<option selected>user</option>" in own, own  # the role chosen, as chosen


async def test_settings_and_new_accounts_mark_each_refused_field(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for name, value in (
            ("sender", "€uro"),
            ("split_mode", "bogus"),
            ("daily_limit", "-1"),
            ("inbound_address", "x@sms.example.com"),
        ):
            r = await post(c, "/account", "/account", {**SETTINGS, "end_marker": "-- end", name: value})
            assert r.status_code == 400 and marked(r.text) == [name], (name, marked(r.text))
            assert 'value="-- end"' in field(r.text, "end_marker")  # the rest as typed
        new = {"action": "add", "name": "newco", "sender": "NEWCO", "networks": ""}
        for name, value in (("networks", "0.0.0.0/0"), ("networks", "127.0.0.0/8"), ("sender", "€uro")):
            r = await post(c, "/operator/accounts", "/operator/accounts", {**new, name: value})
            assert r.status_code == 400 and marked(r.text) == [name], (name, value, marked(r.text))
            assert 'value="newco"' in field(r.text, "name", 'id="add-account"')
        suspend = {"action": "suspend", "name": "rival", "reason": "x" * 300, "confirm": "yes"}
        r = await post(c, "/operator/accounts", "/operator/accounts", suspend)
        assert r.status_code == 400 and marked(r.text) == ["reason"]
        # About no field: resuming an account that is not suspended (its form has none).
        r = await post(c, "/operator/accounts", "/operator/accounts", {"action": "resume", "name": "acme"})
        assert r.status_code == 400 and "is not suspended" in said(r.text) and marked(r.text) == []


async def test_premium_and_user_forms_mark_each_refused_field(web: WebContext) -> None:
    service = {"password": "KP555", "email": "ops@example.com", "account": "acme", "reply_acl": ""}
    async with as_user(web, OPERATOR) as c:
        for name, value in (("account", "nope"), ("reply_acl", "bad"), ("password", "x")):
            r = await post(c, "/premium", "/premium", {**service, name: value})
            assert r.status_code == 400 and marked(r.text) == [name], (name, marked(r.text))
            assert 'value="ops@example.com"' in field(r.text, "email", 'id="add-service"')
    async with as_user(web, ADMIN) as c:
        wrong = {"action": "password", "email": ADMIN, "password": "long enough 12", "current_password": "no"}
        r = await post(c, "/users", "/users", wrong)
        assert r.status_code == 400 and marked(r.text) == ["current_password"]
        assert "long enough 12" not in r.text  # a password never comes back
        r = await post(c, "/users", "/users", {"action": "add", "email": "x@other.example"})
        assert r.status_code == 400 and marked(r.text) == ["email"]
        assert 'value="x@other.example"' in field(r.text, "email", 'id="add-user"')
