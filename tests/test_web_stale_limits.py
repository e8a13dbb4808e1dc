"""A user's limits form on the users page, loaded before another save, must not undo that save.

The form wrote both limits back: the operator set a user's monthly limit to 500 while the company
admin's users page stood open, and the admin's save of a daily limit took the 500 away again, answered
"user jan@acme.example updated". The form now writes only the limit it changed, and a limit it changed
that was also changed since it was loaded is refused with 409, naming it and its value now.

Against the real daemon: the panel over real HTTP with logged-in sessions (httpx over TCP, each form
read from the served HTML as a browser submits it). What was saved is read from the database and the
audit trail.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB
from tests.test_web_stale_forms import ADMIN, ADMIN_PASSWORD, _with_admin, logged_in

JAN = "jan@acme.example"


class _Forms(HTMLParser):
    """Every form of the page with the fields a browser submits from it (inputs and selects)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = True
            self.forms.append({})
        elif self.inside and tag == "input" and "name" in a and a.get("type") != "checkbox":
            self.forms[-1][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def limits_form(page: str, email: str = JAN) -> dict[str, str]:
    parser = _Forms()
    parser.feed(page)
    found = [f for f in parser.forms if f.get("action") == "limits" and f.get("email") == email]
    assert len(found) == 1, f"no limits form of {email} in the page"
    return found[0]


def error_of(page: str) -> str:
    start = page.index('id="error"')
    return html.unescape(page[page.index(">", start) + 1 : page.index("</", start)])


def limits_set(store: Any) -> list[tuple[str, str]]:
    rows = store.db.conn.execute("SELECT actor, detail FROM audit WHERE action = 'user.limits' ORDER BY id")
    return [tuple(r) for r in rows]


def limits_of(store: Any, email: str = JAN) -> tuple[int | None, int | None]:
    user = store.db.conn.execute("SELECT monthly_limit, daily_limit FROM users WHERE email = ?", (email,))
    return tuple(user.fetchone())


@asynccontextmanager
async def admin_and_operator(
    tmp_path: Path,
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, httpx.AsyncClient]]:
    """The company admin's session and the operator's, on one daemon whose acme has the user JAN."""
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        await _with_admin(gw)
        await gw.store.write(lambda: gw.store.accounts.add_user(JAN, "acme"))
        base = f"http://127.0.0.1:{gw.daemon.web.port}"
        password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
        async with logged_in(base, ADMIN, ADMIN_PASSWORD) as admin, logged_in(base, STAFF, password) as op:
            yield gw, admin, op


async def test_a_stale_users_page_saving_the_daily_limit_keeps_the_monthly_limit_set_meanwhile(
    tmp_path: Path,
) -> None:
    async with admin_and_operator(tmp_path) as (gw, admin, operator):
        stale = limits_form((await admin.get("/users")).text)
        fresh = limits_form((await operator.get("/users?account=acme")).text)
        r = await operator.post("/users?account=acme", data={**fresh, "monthly_limit": "500"})
        assert r.status_code == 303, r.text
        r = await admin.post("/users", data={**stale, "daily_limit": "20"})
        assert r.status_code == 303, r.text
        assert limits_of(gw.store) == (500, 20)
        assert limits_set(gw.store) == [(STAFF, f"{JAN} monthly=500"), (ADMIN, f"{JAN} daily=20")]
        # The page after the save shows both limits as they are now.
        page = (await admin.get(r.headers["location"])).text
        shown = limits_form(page)
        assert (shown["monthly_limit"], shown["daily_limit"]) == ("500", "20")
        assert f"user {JAN} updated" in page


async def test_a_limit_changed_on_both_pages_is_refused_naming_it_then_saved_on_purpose(
    tmp_path: Path,
) -> None:
    async with admin_and_operator(tmp_path) as (gw, admin, operator):
        stale = limits_form((await admin.get("/users")).text)
        fresh = limits_form((await operator.get("/users?account=acme")).text)
        r = await operator.post(
            "/users?account=acme", data={**fresh, "monthly_limit": "500", "daily_limit": "40"}
        )
        assert r.status_code == 303, r.text

        # The stale page first mistypes: refused as before, and the row it shows again still knows
        # what it was loaded with, so that fixing the mistake does not undo the operator's save.
        r = await admin.post("/users", data={**stale, "monthly_limit": "300", "daily_limit": "ten"})
        assert r.status_code == 400, r.text
        retyped = limits_form(r.text)
        assert retyped["loaded"] == stale["loaded"] and retyped["daily_limit"] == "ten"
        r = await admin.post("/users", data={**retyped, "daily_limit": "45"})
        assert r.status_code == 409, r.text
        said = error_of(r.text)
        assert said.startswith(f"limits of {JAN}: not saved: changed by someone else"), said
        assert "monthly limit (now: 500); daily limit (now: 40)" in said, said
        assert limits_of(gw.store) == (500, 40)
        assert len(limits_set(gw.store)) == 1  # the refused save changed and recorded nothing
        # The admin's input where they typed, kept for a save made seeing both.
        refused = limits_form(r.text)
        assert (refused["monthly_limit"], refused["daily_limit"]) == ("300", "45")
        assert refused["loaded"] != stale["loaded"]

        r = await admin.post("/users", data=refused)
        assert r.status_code == 303, r.text
        assert limits_of(gw.store) == (300, 45)
        assert limits_set(gw.store)[-1] == (ADMIN, f"{JAN} monthly=300 daily=45")


async def test_only_the_limit_changed_on_both_pages_is_named_and_its_input_kept(tmp_path: Path) -> None:
    async with admin_and_operator(tmp_path) as (gw, admin, operator):
        await gw.store.write(lambda: gw.store.accounts.set_user(JAN, monthly_limit=100, daily_limit=10))
        stale = limits_form((await admin.get("/users")).text)
        fresh = limits_form((await operator.get("/users?account=acme")).text)
        r = await operator.post(
            "/users?account=acme", data={**fresh, "monthly_limit": "", "daily_limit": "15"}
        )
        assert r.status_code == 303, r.text
        r = await admin.post("/users", data={**stale, "monthly_limit": "200"})  # the stale page's 10 daily
        assert r.status_code == 409, r.text
        said = error_of(r.text)
        assert "monthly limit (now: none)" in said and "daily limit" not in said, said
        refused = limits_form(r.text)
        # Typed where it typed, the limit now where it did not: the 15 is not undone by saving again.
        assert (refused["monthly_limit"], refused["daily_limit"]) == ("200", "15")
        assert limits_of(gw.store) == (None, 15)
        r = await admin.post("/users", data=refused)
        assert r.status_code == 303, r.text
        assert limits_of(gw.store) == (200, 15)


async def test_the_same_limit_set_on_both_pages_is_no_conflict(tmp_path: Path) -> None:
    async with admin_and_operator(tmp_path) as (gw, admin, operator):
        stale = limits_form((await admin.get("/users")).text)
        fresh = limits_form((await operator.get("/users?account=acme")).text)
        r = await operator.post("/users?account=acme", data={**fresh, "monthly_limit": "500"})
        assert r.status_code == 303, r.text
        r = await admin.post("/users", data={**stale, "monthly_limit": "0500"})
        assert r.status_code == 303, r.text
        assert limits_of(gw.store) == (500, None)
        # The second save changed nothing: said so, and no row, as `user set` writes none.
        assert f"user {JAN} unchanged" in (await admin.get(r.headers["location"])).text
        assert [d for _, d in limits_set(gw.store)] == [f"{JAN} monthly=500"]


async def test_a_form_without_the_stamp_writes_both_limits_as_before(tmp_path: Path) -> None:
    """A page served before the stamp (or a script posting the two fields) sets what it sends."""
    async with admin_and_operator(tmp_path) as (gw, admin, _operator):
        await gw.store.write(lambda: gw.store.accounts.set_user(JAN, monthly_limit=100, daily_limit=10))
        form = limits_form((await admin.get("/users")).text)
        form.pop("loaded", None)
        r = await admin.post("/users", data={**form, "monthly_limit": "7", "daily_limit": ""})
        assert r.status_code == 303, r.text
        assert limits_of(gw.store) == (7, None)


class _Marks(HTMLParser):
    """The attributes of each limit field in one user's limits form."""

    def __init__(self, email: str) -> None:
        super().__init__()
        self.email = email
        self.form: dict[str, dict[str, str]] | None = None
        self.found: list[dict[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form = {}
        elif self.form is not None and tag == "input" and "name" in a:
            self.form[a["name"]] = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.form is not None:
            if self.form.get("action", {}).get("value") == "limits":
                if self.form.get("email", {}).get("value") == self.email:
                    self.found.append(self.form)
            self.form = None


def limit_marks(page: str, email: str = JAN) -> dict[str, tuple[str | None, str | None]]:
    """Each limit field's (aria-invalid, aria-describedby) in the user's limits form."""
    parser = _Marks(email)
    parser.feed(page)
    assert len(parser.found) == 1, f"no limits form of {email} in the page"
    form = parser.found[0]
    return {
        n: (form[n].get("aria-invalid"), form[n].get("aria-describedby"))
        for n in ("monthly_limit", "daily_limit")
    }


async def test_a_stale_limits_form_marks_the_limits_changed_on_both_sides(tmp_path: Path) -> None:
    """The refusal's message named the limit, but no field was marked: a screen reader's user heard
    "not saved" and had to find which of the row's fields it meant. The conflicting one is invalid and
    described by the error; the other one of the row is described by it only, as in any refusal."""
    async with admin_and_operator(tmp_path) as (gw, admin, operator):
        await gw.store.write(lambda: gw.store.accounts.set_user(JAN, monthly_limit=100, daily_limit=10))
        stale = limits_form((await admin.get("/users")).text)
        fresh = limits_form((await operator.get("/users?account=acme")).text)
        r = await operator.post("/users?account=acme", data={**fresh, "daily_limit": "15"})
        assert r.status_code == 303, r.text
        r = await admin.post("/users", data={**stale, "monthly_limit": "200", "daily_limit": "20"})
        assert r.status_code == 409, r.text
        assert "daily limit (now: 15)" in error_of(r.text)
        assert limit_marks(r.text) == {"monthly_limit": (None, "error"), "daily_limit": ("true", "error")}
        # Both changed on both sides: both marked.
        fresh = limits_form((await operator.get("/users?account=acme")).text)
        r = await operator.post(
            "/users?account=acme", data={**fresh, "monthly_limit": "300", "daily_limit": "16"}
        )
        assert r.status_code == 303, r.text
        r = await admin.post("/users", data={**stale, "monthly_limit": "200", "daily_limit": "20"})
        assert r.status_code == 409, r.text
        assert limit_marks(r.text) == {"monthly_limit": ("true", "error"), "daily_limit": ("true", "error")}
        # The page loaded afresh marks nothing.
        assert limit_marks((await admin.get("/users")).text) == {
            "monthly_limit": (None, None),
            "daily_limit": (None, None),
        }
