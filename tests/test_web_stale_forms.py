"""A settings page loaded before another save must not undo that save when it is saved itself.

The account form wrote every field back: an admin's second tab, loaded before the first tab set the
billing addresses and quiet hours, cleared both when it saved only a new end marker, and an operator's
stale tab took a monthly limit of 500 away again, each time answering "account acme updated". The
form now writes only the fields it changed, and a field it changed that was also changed since it was
loaded is refused with 409, both values shown.

Against the real daemon: a real headless Chromium with two tabs, and the panel over real HTTP with a
logged-in session (httpx over TCP, the forms read from the served HTML as a browser submits them).
What was saved is read from the database and the audit trail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from acl.passwords import hash_password
from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, chromium

ADMIN, ADMIN_PASSWORD = "boss@acme.example", "boss password 1"


class _Form(HTMLParser):
    """The fields a browser submits from the form with `form_id`, as the page was served."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, {}
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and "name" in a:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value") or "on"
            else:
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select = a["name"]
        elif tag == "option" and self.select is not None and "selected" in a:
            self.fields[self.select] = None  # its text follows
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self.select is not None and self.fields.get(self.select, "") is None:
            self.fields[self.select] = data
        elif self.textarea is not None:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def settings_form(html: str) -> dict[str, str]:
    parser = _Form("settings")
    parser.feed(html)
    assert "csrf" in parser.fields, "no settings form in the page"
    return parser.fields


@asynccontextmanager
async def logged_in(base: str, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    """A session over TCP, its cookies kept by the client as a browser keeps them."""
    async with httpx.AsyncClient(base_url=base, timeout=15) as c:
        page = await c.get("/login")
        start = page.text.index('name="csrf" value="') + len('name="csrf" value="')
        csrf = page.text[start : page.text.index('"', start)]
        r = await c.post("/login", data={"email": email, "password": password, "csrf": csrf})
        assert r.status_code == 303, r.text
        yield c


def account_sets(store: Any) -> list[tuple[str, str]]:
    rows = store.db.conn.execute("SELECT actor, detail FROM audit WHERE action = 'account.set' ORDER BY id")
    return [tuple(r) for r in rows]


async def _with_admin(gw: Any) -> None:
    digest = hash_password(ADMIN_PASSWORD)

    def admin() -> None:
        gw.store.accounts.add_user(ADMIN, "acme", password_hash=digest)
        gw.store.accounts.set_user(ADMIN, role="admin")

    await gw.store.write(admin)


def _two_tabs(driver: Any, base: str) -> dict[str, str]:
    """The steps: tab B loaded, tab A saves billing and quiet hours, tab B saves a marker."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), ADMIN))
    driver.get(base + "/account")
    tab_a = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(base + "/account")
    wait.until(ec.presence_of_element_located((By.ID, "billing-to")))
    tab_b = driver.current_window_handle

    driver.switch_to.window(tab_a)
    field = driver.find_element(By.ID, "billing-to")
    field.clear()
    field.send_keys("faktury@acme.example")
    field = driver.find_element(By.NAME, "quiet_hours")
    field.clear()
    field.send_keys("22:00-07:00")
    driver.find_element(By.CSS_SELECTOR, "#settings button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account acme updated"))

    driver.switch_to.window(tab_b)
    field = driver.find_element(By.NAME, "end_marker")
    field.clear()
    field.send_keys("KONIEC")
    driver.find_element(By.CSS_SELECTOR, "#settings button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account acme updated"))
    return {
        name: driver.find_element(By.NAME, name).get_attribute("value")
        for name in ("billing_to", "quiet_hours", "end_marker")
    }


async def test_a_stale_tab_saving_the_end_marker_keeps_the_other_tabs_billing_and_quiet_hours(
    tmp_path: Path,
) -> None:
    with chromium() as driver:
        async with (
            HappySMSC() as smsc,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
        ):
            await _with_admin(gw)
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            shown = await asyncio.to_thread(_two_tabs, driver, base)
            acc = gw.store.accounts.get_account("acme")
            assert gw.store.accounts.billing_addresses(acc.id) == ["faktury@acme.example"]
            assert (acc.quiet_start, acc.quiet_end, acc.end_marker) == ("22:00", "07:00", "KONIEC")
            assert shown == {
                "billing_to": "faktury@acme.example",
                "quiet_hours": "22:00-07:00",
                "end_marker": "KONIEC",
            }
            assert account_sets(gw.store) == [
                (ADMIN, "acme: quiet_start=22:00, quiet_end=07:00, billing_to=faktury@acme.example"),
                (ADMIN, "acme: end_marker=KONIEC"),
            ]


async def test_the_operators_monthly_limit_survives_a_stale_tab_of_the_account_page(tmp_path: Path) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
        async with logged_in(f"http://127.0.0.1:{gw.daemon.web.port}", STAFF, password) as c:
            tab_a = settings_form((await c.get("/account?account=acme")).text)
            tab_b = settings_form((await c.get("/account?account=acme")).text)
            r = await c.post("/account?account=acme", data={**tab_a, "monthly_limit": "500"})
            assert r.status_code == 303, r.text
            r = await c.post("/account?account=acme", data={**tab_b, "end_marker": "--KONIEC--"})
            assert r.status_code == 303, r.text
            acc = gw.store.accounts.get_account("acme")
            assert (acc.monthly_limit, acc.end_marker) == (500, "--KONIEC--")
            assert account_sets(gw.store) == [
                (STAFF, "acme: monthly_limit=500"),
                (STAFF, "acme: end_marker=--KONIEC--"),
            ]
            # The page after the save shows the limit kept, as the note on it does.
            page = (await c.get(r.headers["location"])).text
            assert settings_form(page)["monthly_limit"] == "500"


async def test_a_field_changed_in_both_tabs_is_refused_with_both_values_then_saved_on_purpose(
    tmp_path: Path,
) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        await _with_admin(gw)
        async with logged_in(f"http://127.0.0.1:{gw.daemon.web.port}", ADMIN, ADMIN_PASSWORD) as c:
            tab_a = settings_form((await c.get("/account")).text)
            tab_b = settings_form((await c.get("/account")).text)
            saved = {"quiet_hours": "22:00-07:00", "billing_to": "faktury@acme.example"}
            r = await c.post("/account", data={**tab_a, **saved})
            assert r.status_code == 303, r.text

            # Tab B first mistypes: refused as before, and the page it shows again still knows what
            # tab B was loaded with, so fixing the mistake does not undo tab A's save either.
            r = await c.post("/account", data={**tab_b, "quiet_hours": "21:00-08:00", "cut_from": "short"})
            assert r.status_code == 400, r.text
            retyped = settings_form(r.text)
            assert retyped.get("loaded") == tab_b.get("loaded")
            r = await c.post("/account", data={**retyped, "cut_from": "", "end_marker": "KONIEC"})
            assert r.status_code == 409, r.text
            assert "quiet hours (now: 22:00-07:00)" in r.text
            assert 'data-field="quiet_hours"' in r.text and 'data-field="billing_to"' not in r.text
            refused = settings_form(r.text)
            # The user's input where they typed, the settings as now where they did not.
            assert refused["quiet_hours"] == "21:00-08:00" and refused["end_marker"] == "KONIEC"
            assert refused["billing_to"] == "faktury@acme.example"
            acc = gw.store.accounts.get_account("acme")
            assert (acc.quiet_start, acc.quiet_end, acc.end_marker) == ("22:00", "07:00", None)
            assert len(account_sets(gw.store)) == 1  # the refused save changed and recorded nothing

            # Saved again from the refusal: a choice made seeing both, so it is written.
            r = await c.post("/account", data=refused)
            assert r.status_code == 303, r.text
            acc = gw.store.accounts.get_account("acme")
            assert (acc.quiet_start, acc.quiet_end, acc.end_marker) == ("21:00", "08:00", "KONIEC")
            assert gw.store.accounts.billing_addresses(acc.id) == ["faktury@acme.example"]
            assert account_sets(gw.store)[-1] == (
                ADMIN,
                "acme: end_marker=KONIEC, quiet_start=21:00, quiet_end=08:00",
            )


async def test_the_same_change_made_in_two_tabs_is_no_conflict(tmp_path: Path) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        await _with_admin(gw)
        async with logged_in(f"http://127.0.0.1:{gw.daemon.web.port}", ADMIN, ADMIN_PASSWORD) as c:
            tab_a = settings_form((await c.get("/account")).text)
            tab_b = settings_form((await c.get("/account")).text)
            cut = (
                "This message is confidential\r\nSent from my phone, sorry\r\n"  # CR LF, as browsers send it
            )
            same = {"cut_from": cut, "bulk": "on"}
            r = await c.post("/account", data={**tab_a, **same, "billing_to": "faktury@acme.example"})
            assert r.status_code == 303, r.text
            r = await c.post("/account", data={**tab_b, **same})
            assert r.status_code == 303, r.text
            assert "account acme unchanged" in (await c.get(r.headers["location"])).text
            acc = gw.store.accounts.get_account("acme")
            assert acc.bulk
            assert tuple(acc.cut_from) == ("This message is confidential", "Sent from my phone, sorry")
            assert gw.store.accounts.billing_addresses(acc.id) == ["faktury@acme.example"]
            # The second tab's save changed nothing: no row in the trail, as `account set` writes none.
            assert [d for _, d in account_sets(gw.store)] == [
                "acme: bulk=1, cut_from=This message is confidential | Sent from my phone, sorry,"
                " billing_to=faktury@acme.example",
            ]
