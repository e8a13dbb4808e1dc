"""The users page shows a page of users at a time, and every row's forms come back to that page.

An account of 3,017 users made an 8.9 MB users page, read and rendered on the daemon's loop while SMTP
sessions waited. The page now lists `SHOWN` users in address order, with first / previous / next
links (cursors by address, as the message search pages by id), a filter by the text of the address,
and the account's count of users. A save on page 3 comes back to page 3; a refused form there shows
page 3 again, with the field at fault marked (aria-invalid, described by the error).

Against the real daemon over real HTTP (httpx over TCP, each form read from the served HTML and
posted to its own action as a browser does); the browser's side in real headless Chromium.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from gateway.web.repo import PAGE as SHOWN  # a page of users is a page of the message search
from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_accessibility import _log_in
from tests.test_web_browser import WEB, chromium
from tests.test_web_stale_forms import ADMIN, ADMIN_PASSWORD, _with_admin, logged_in

# Two and a half pages of acme's own users, added in no order, some in capitals: listed by address
# as the column compares (either case alike).
STAFFERS = [f"{'U' if i % 7 == 0 else 'u'}{i:03d}@acme.example" for i in range(SHOWN * 5 // 2)][::-1]


class _Page(HTMLParser):
    """The rows' addresses, each form's action and fields, and the fields marked invalid."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.marked: list[tuple[str, str]] = []  # (row's address, field's name)
        self.links: dict[str, str] = {}  # id: href
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-email" in a:
            self.rows.append(a["data-email"])
        elif tag == "a" and "id" in a:
            self.links[a["id"]] = a["href"]
        elif tag == "form":
            self.inside = True
            self.forms.append({"_action": a.get("action", ""), "_method": a.get("method", "get")})
        elif tag in ("input", "select") and "name" in a:
            if a.get("aria-invalid") == "true":
                assert a.get("aria-describedby") == "error", a
                self.marked.append((self.rows[-1] if self.rows else "", a["name"]))
            if self.inside and a.get("type") != "checkbox":
                self.forms[-1][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def parsed(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def form_of(page: _Page, action: str, email: str) -> dict[str, str]:
    found = [f for f in page.forms if f.get("action") == action and f.get("email") == email]
    assert len(found) == 1, (action, email)
    return found[0]


def count_of(page: str) -> str:
    m = re.search(r'<p id="user-count">([^<]*)</p>', page)
    assert m, "no count of users on the page"
    return html.unescape(m.group(1))


@asynccontextmanager
async def panel(tmp_path: Path) -> AsyncIterator[tuple[Any, str, str]]:
    """The daemon, acme with its admin and `STAFFERS`: the daemon, its panel's address, the operator's
    password."""
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        await _with_admin(gw)

        def staff() -> list[str]:
            for email in STAFFERS:
                gw.store.accounts.add_user(email, "acme")
            return [u.email for u in gw.store.accounts.list_users("acme")]

        gw.acme = await gw.store.write(staff)  # the account's users in the page's order, as the CLI lists
        password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
        yield gw, f"http://127.0.0.1:{gw.daemon.web.port}", password


async def _get(c: httpx.AsyncClient, url: str) -> tuple[str, _Page]:
    r = await c.get(html.unescape(url))
    assert r.status_code == 200, r.text
    return r.text, parsed(r.text)


async def test_the_users_page_pages_by_address_and_a_form_on_page_three_comes_back_to_it(
    tmp_path: Path,
) -> None:
    async with panel(tmp_path) as (gw, base, _), logged_in(base, ADMIN, ADMIN_PASSWORD) as admin:
        everyone = gw.acme
        assert len(everyone) > 2 * SHOWN + 1 and everyone == sorted(everyone, key=str.lower)
        text, first = await _get(admin, "/users")
        assert first.rows == everyone[:SHOWN]
        assert count_of(text).startswith(f"{len(everyone)} users;")
        assert "next" in first.links and "previous" not in first.links and "first" not in first.links
        assert len(text) < 250_000  # the page is a page: 3,017 users made 8.9 MB
        text, second = await _get(admin, first.links["next"])
        assert second.rows == everyone[SHOWN : 2 * SHOWN]
        _, third = await _get(admin, second.links["next"])
        assert third.rows == everyone[2 * SHOWN :] and "next" not in third.links
        _, back = await _get(admin, third.links["previous"])
        assert back.rows == second.rows
        _, again = await _get(admin, third.links["first"])
        assert again.rows == first.rows
        # A limits form of page 3, refused: page 3 again, its row's field marked, the others not.
        jan = third.rows[3]
        form = form_of(third, "limits", jan)
        action = html.unescape(form.pop("_action"))
        assert action.startswith("/users?after="), action
        r = await admin.post(action, data={**form, "monthly_limit": "lots"})
        assert r.status_code == 400, r.text
        refused = parsed(r.text)
        assert refused.rows == third.rows and refused.marked == [(jan, "monthly_limit")]
        assert f"limits of {jan}" in r.text
        # Saved: back to page 3, saying so.
        r = await admin.post(action, data={**form, "monthly_limit": "500"})
        assert r.status_code == 303, r.text
        text, saved = await _get(admin, r.headers["location"])
        assert saved.rows == third.rows and f"user {jan} updated" in text
        assert form_of(saved, "limits", jan)["monthly_limit"] == "500"
        # Removed from page 3: page 3 without it.
        form = form_of(saved, "remove", jan)
        r = await admin.post(html.unescape(form.pop("_action")), data={**form, "confirm": "yes"})
        assert r.status_code == 303, r.text
        text, after = await _get(admin, r.headers["location"])
        assert after.rows == [e for e in third.rows if e != jan] and f"user {jan} removed" in text
        assert count_of(text).startswith(f"{len(everyone) - 1} users;")


async def test_the_filter_keeps_the_addresses_with_the_text_and_pages_with_it(tmp_path: Path) -> None:
    async with panel(tmp_path) as (gw, base, password), logged_in(base, STAFF, password) as operator:
        everyone = gw.acme
        text, found = await _get(operator, "/users?account=acme&address=u01")
        ten = [e for e in everyone if "u01" in e.lower()]
        assert found.rows == ten and len(ten) == 10 and not ({"next", "previous"} & found.links.keys())
        assert count_of(text) == f"{len(everyone)} users, 10 with “u01” in the address."
        # Every staffer's address has "acme": the filter pages, each link keeping it and the account.
        text, first = await _get(operator, "/users?account=acme&address=ACME")
        assert first.rows == everyone[:SHOWN]
        assert "account=acme" in first.links["next"] and "address=ACME" in first.links["next"]
        _, second = await _get(operator, first.links["next"])
        assert second.rows == everyone[SHOWN : 2 * SHOWN]
        # The operator's refused role change on page 2 (a promotion without their password): page 2
        # of the filtered list again, the password field of that row marked.
        anna = second.rows[0]
        form = form_of(second, "role", anna)
        action = html.unescape(form.pop("_action"))
        assert "account=acme" in action and "address=ACME" in action and "after=" in action
        r = await operator.post(action, data={**form, "role": "admin"})
        assert r.status_code == 400, r.text
        assert parsed(r.text).rows == second.rows
        assert parsed(r.text).marked == [(anna, "current_password")]
        # Nothing matches: said so, with the count.
        text, none = await _get(operator, "/users?account=acme&address=nobody-at-all")
        assert none.rows == [] and "No user's address contains that." in html.unescape(text)
        # A cursor or filter no form makes: 400, the field named and marked.
        r = await operator.get("/users?account=acme&address=" + "x" * 300)
        assert r.status_code == 400 and parsed(r.text).marked == [("", "address")]


async def test_the_users_page_in_a_real_browser(tmp_path: Path) -> None:
    with chromium() as driver:
        async with panel(tmp_path) as (gw, base, password):
            await asyncio.to_thread(_browse, driver, base, password, gw.acme)


def _browse(driver: Any, base: str, password: str, everyone: list[str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    css = By.CSS_SELECTOR

    def rows() -> list[str]:
        return [r.get_attribute("data-email") for r in driver.find_elements(css, "#users tr[data-email]")]

    _log_in(driver, base, password)
    driver.get(base + "/users?account=acme")
    wait.until(ec.presence_of_element_located((By.ID, "next"))).click()
    wait.until(ec.presence_of_element_located((By.ID, "previous")))
    page_two = everyone[SHOWN : 2 * SHOWN]
    assert rows() == page_two
    url = driver.current_url
    # A limits form refused on page 2: page 2 again, the field marked and pointing at the alert.
    row = f'#users tr[data-email="{page_two[5]}"] '
    field = driver.find_element(css, row + 'input[name="daily_limit"]')
    field.clear()
    field.send_keys("many")
    driver.find_element(css, row + "button.set-limits").click()
    error = wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert "daily limit" in error.text and rows() == page_two
    marked = driver.find_elements(css, '[aria-invalid="true"]')
    assert [(m.get_attribute("name"), m.get_attribute("aria-describedby")) for m in marked] == [
        ("daily_limit", "error")
    ]
    assert driver.find_element(css, row + 'input[name="daily_limit"]').get_attribute("value") == "many"
    # Saved: the same page, the new limit in its row.
    field = driver.find_element(css, row + 'input[name="daily_limit"]')
    field.clear()
    field.send_keys("20")
    driver.find_element(css, row + "button.set-limits").click()
    wait.until(ec.text_to_be_present_in_element((css, "main"), f"user {page_two[5]} updated"))
    assert rows() == page_two and driver.current_url.startswith(url)
    assert driver.find_element(css, row + 'input[name="daily_limit"]').get_attribute("value") == "20"
    # The filter, typed: its matches, and "all users" back to the first page.
    driver.find_element(By.ID, "address").send_keys("u12")
    driver.find_element(By.ID, "address").submit()
    wait.until(ec.presence_of_element_located((By.ID, "all-users")))
    assert rows() == [e for e in everyone if "u12" in e.lower()]
    driver.find_element(By.ID, "all-users").click()
    wait.until(ec.presence_of_element_located((By.ID, "next")))
    assert rows() == everyone[:SHOWN]


def test_a_page_whose_neighbours_were_removed_shows_a_full_page(tmp_path: Path) -> None:
    """A previous link after users before it were removed is the first page, full, not a short
    one; a next link past users removed since (the last page's last) is the last page, not an empty
    one. Read from a real SQLite file, as the panel's reader reads it."""
    from gateway.web.userlist import user_page
    from tests.web_helpers import seeded_store

    store = seeded_store(tmp_path)
    for i in range(7):
        store.accounts.add_user(f"p{i}@acme.example", "acme")
    conn, acme = store.db.conn, store.accounts.get_account("acme").id
    everyone = [u.email for u in store.accounts.list_users("acme")]
    assert len(everyone) == 10
    first = user_page(conn, acme, limit=4)
    assert [u.email for u in first.users] == everyone[:4] and first.later and not first.earlier
    # "previous" from the page starting at everyone[2]: only two before it, so the first page.
    back = user_page(conn, acme, before=everyone[2], limit=4)
    assert [u.email for u in back.users] == everyone[:4] and not back.earlier and back.later
    # "next" after the old last page's cursor, its users gone: the last page, which says so.
    store.accounts.remove_user(everyone[9])
    store.accounts.remove_user(everyone[8])
    last = user_page(conn, acme, after=everyone[7], limit=4)
    assert [u.email for u in last.users] == everyone[4:8] and last.earlier and not last.later
    assert (last.total, last.found) == (8, 8)
    store.close()
