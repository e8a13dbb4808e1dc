# ruff: noqa: F811  (the tests take test_web_admin_day's `web` fixture, imported by name)
"""How the panel's pages read and hold up: the accounts list's links, destructive buttons wanting a
confirmation, the dashboard's day counts off the loop, edited URLs answered 400 with a reason, the
state filter, every field labelled, the operator's role as text, and a phone's opt-out word shown as
any stranger's text. Through the real app on a real SQLite file, as in test_web_admin_day.py; split
from it by subject (it was over 400 lines)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from gateway.web.app import WebContext
from tests.test_web_admin_day import (
    _error,
    web,  # noqa: F401  (the fixture)
)
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    add_mail,
    as_user,
    csrf_of,
)

# ---- 11, 12: the accounts list and destructive buttons ----------------------------------------------


async def test_the_accounts_list_links_each_accounts_settings(web: WebContext) -> None:
    await web.store.write(lambda: web.store.accounts.add_account("A&B"))
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/operator/accounts")).text
        assert 'href="/account?account=A%26B"' in page and 'href="/account?account=rival"' in page


async def test_destructive_buttons_want_a_confirmation(web: WebContext) -> None:
    mine = web.store.mine  # type: ignore[attr-defined]
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/")).text)
        refused = {
            "/users": {"action": "remove", "email": ADMIN},
            "/operator/accounts": {"action": "suspend", "name": "rival"},
            f"/messages/{mine}/cancel": {},
            "/optouts": {"action": "remove", "number": "+48602000002"},
        }
        for path, data in refused.items():
            r = await c.post(path, data={**data, "csrf": token})
            assert r.status_code == 400 and "confirm" in _error(r.text), path
        # Each box is named for what it confirms: its label alone said "sure" on every row.
        box = '<input type="checkbox" name="confirm" value="yes" required aria-label="sure: '
        for path in ("/users", "/operator/accounts", f"/messages/{mine}", "/account"):
            assert box in (await c.get(path)).text, path
    assert web.store.accounts.find_user(ADMIN) is not None
    assert web.store.accounts.get_account("rival").suspended_at is None
    assert web.store.admin.message_info(mine)["state"] == "queued"
    assert web.store.policy.is_opted_out("+48602000002")


# ---- 13: the dashboard's day counts -------------------------------------------------------------


async def test_dashboard_counts_the_day_off_the_loop(web: WebContext) -> None:
    on_loop: list[str] = []
    async with as_user(web, OPERATOR) as c:
        web.store.db.conn.set_trace_callback(on_loop.append)
        try:
            page = (await c.get("/")).text
        finally:
            web.store.db.conn.set_trace_callback(None)
    assert re.search(r'id="today">\s*<li class="state-queued"><b>2</b> queued', page)
    assert not [sql for sql in on_loop if "GROUP BY state" in sql], on_loop


# ---- 15, 16: edited URLs and the state filter ------------------------------------------------------


async def test_edited_urls_get_a_400_with_a_reason_not_a_500_or_a_guess(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for path, words in (
            ("/premium?month=9999-12", "give YYYY-MM between"),
            ("/premium?month=2026-13", "give YYYY-MM between"),
            ("/premium?month=11/2026", "give YYYY-MM between"),
            ("/premium?month=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-11", "give YYYY-MM between"),
            ("/messages?before=99999999999999999999999", "is not a message id"),
            ("/messages?before=%C2%B2", "is not a message id"),
            ("/messages?before=" + "9" * 5000, "is not a message id"),  # past int()'s digit limit: a 500
            ("/messages?from=2026-02-30", "is not a date"),
            ("/messages?to=30.11.2026", "is not a date"),
            ("/messages?state=deferred", "is not a message state"),
            ("/messages.csv?from=2026-02-30", "is not a date"),
        ):
            r = await c.get(path)
            assert r.status_code == 400 and words in _error(r.text), (path, r.status_code)
        r = await c.get("/messages/99999999999999999999999")
        assert r.status_code == 404
        r = await c.get("/premium?month=2026-11")
        assert r.status_code == 200


async def test_the_state_filter_offers_message_states_only(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/messages")).text
    offered = re.findall(r"<option(?: selected)?>(\w+)</option>", page)
    assert offered == [
        "queued",
        "hold",
        "submitted",
        "delivered",
        "failed",
        "expired",
        "cancelled",
        "unreported",
    ]


# ---- 17, 18: labels, and the operator's row seen by a company admin ---------------------------------


class _Fields(HTMLParser):
    """Form fields a screen reader cannot name: no <label> around them and no aria-label."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = 0
        self.unnamed: list[str] = []
        self.buttons: list[str] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.labels += 1
        elif tag in ("input", "select") and a.get("type") != "hidden":
            if not self.labels and not a.get("aria-label"):
                self.unnamed.append(f"{tag} {a.get('name')}")
        elif tag == "button":
            self._button = [a.get("aria-label") or ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.labels -= 1
        elif tag == "button" and self._button is not None:
            self.buttons.append("".join(self._button))
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None and not self._button[0]:
            self._button.append(data.strip())


async def test_every_field_has_a_label_and_row_buttons_say_what_they_do(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for path in ("/users", "/account", "/operator/accounts", "/premium", "/messages"):
            fields = _Fields()
            fields.feed((await c.get(path)).text)
            assert not fields.unnamed, (path, fields.unnamed)
            sets = [b for b in fields.buttons if b == "Set"]
            assert not sets, (path, fields.buttons)
            assert len(set(fields.buttons)) == len(fields.buttons), (path, fields.buttons)


async def test_a_company_admin_sees_the_operators_role_as_text(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/users")).text
    row = re.search(rf'<tr data-email="{OPERATOR}">.*?</tr>', page, re.S)
    assert row is not None
    assert "<select" not in row.group(0) and "<form" not in row.group(0)
    assert '<span class="role">operator</span>' in row.group(0)


async def test_a_phones_opt_out_word_is_shown_as_any_strangers_text(web: WebContext) -> None:
    # The word is the phone's whole SMS: a U+202E made "STOP" read "POTS", and 900 "!" made the
    # table 5,788 px wide with every Remove button off the screen.
    store = web.store
    await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601999998", "hello"))
    word = "\u202eSTOP\u202c" + "!" * 900
    await store.write(lambda: store.policy.add_optout("+48601999998", word=word, source="mo"))
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/account?account=acme")).text
    listed = re.search(r'<table id="optouts">.*?</table>', page, re.S)
    assert listed is not None
    found = re.search(r"<td>\+48601999998</td><td>[^<]*</td><td>mo \(([^)]*)\)</td>", listed.group(0))
    assert found is not None, listed.group(0)
    cell = found.group(1)
    assert "\u202e" not in cell and "\\u202e" in cell and len(cell) <= 40, cell
