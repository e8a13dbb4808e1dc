"""The panel for screen-reader and low-vision users, as Chromium's accessibility tree gives it.

A screen reader's view of the panel showed: a refused form's error never read (no
role=alert, focus left on the page, the login's autofocus reading the Email field instead), a user
row's error not saying whose row; every confirmation box named "sure"; the tables without a name,
with empty column headers, and the dashboard's meters read as bare percentages; form field edges at
1.36:1 against white; the recorded mail's page titled "Messages". Real headless Chromium against the
real daemon, set up as tests/test_web_browser.py is (it fails, not skips, without a browser under
CI=true); selenium's `accessible_name` and `aria_role` are Chromium's computed name and role.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from acl.passwords import hash_password
from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, chromium
from tests.web_helpers import ADMIN, OPERATOR, PLAIN, as_user, csrf_of, panel_store, web_context

BOB = "bob@acme.example"  # a plain user of acme; STAFF is the gateway's operator
OPTED_OUT = "+48601999888"


@asynccontextmanager
async def panel(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The daemon with a rival account, a user bob and an opt-out: its address and the operator's
    password (the initial one, so that the credential-making forms ask for it again)."""
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        store = gw.store
        digest = hash_password("bob password 1")

        def seed() -> None:
            store.accounts.add_account("rival")
            store.accounts.add_user(BOB, "acme", password_hash=digest)
            store.policy.add_optout(OPTED_OUT, word=None, source="admin")

        await store.write(seed)
        password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
        yield f"http://127.0.0.1:{gw.daemon.web.port}", password


def _log_in(driver: Any, base: str, password: str, email: str = STAFF) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "/login")
    WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.ID, "email"))).send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 15).until(ec.text_to_be_present_in_element((By.ID, "whoami"), email))


async def _in_browser(tmp_path: Path, visit: Callable[[Any, str, str], None]) -> None:
    with chromium() as driver:
        async with panel(tmp_path) as (base, password):
            await asyncio.to_thread(visit, driver, base, password)


def _errors_announced(driver: Any, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    # The login refused: the reader is put on the message, not in the Email field, and Tab goes on
    # to the form.
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys("not the password")
    driver.find_element(By.ID, "login").click()
    error = wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert error.aria_role == "alert"
    assert "wrong email or password" in error.text
    assert driver.switch_to.active_element == error
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element == driver.find_element(By.ID, "email")

    _log_in(driver, base, password)
    # A user row's refused limit: the message says whose, is an alert with the focus on it, and
    # the row's fields point at it.
    driver.get(base + "/users")
    row = f'#users tr[data-email="{BOB}"] '
    limit = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row + 'input[name="monthly_limit"]')))
    limit.send_keys("lots")
    driver.find_element(By.CSS_SELECTOR, row + "button.set-limits").click()
    error = wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert error.aria_role == "alert"
    assert BOB in error.text and "'lots'" in error.text, error.text
    assert driver.switch_to.active_element == error
    limit = driver.find_element(By.CSS_SELECTOR, row + 'input[name="monthly_limit"]')
    assert limit.get_attribute("aria-describedby") == "error"
    other = f'#users tr[data-email="{STAFF}"] input[name="monthly_limit"]'
    assert driver.find_element(By.CSS_SELECTOR, other).get_attribute("aria-describedby") is None
    # A save that went: a status, read without taking the focus.
    limit.clear()
    limit.send_keys("500")
    driver.find_element(By.CSS_SELECTOR, row + "button.set-limits").click()
    done = wait.until(ec.text_to_be_present_in_element((By.ID, "done"), f"user {BOB} updated"))
    assert done
    assert driver.find_element(By.ID, "done").aria_role == "status"
    # A new address refused: the Email field itself is marked.
    new = driver.find_element(By.ID, "new-email")
    new.send_keys("x@sms.example.com")
    driver.find_element(By.ID, "add").click()
    wait.until(ec.presence_of_element_located((By.ID, "error")))
    new = driver.find_element(By.ID, "new-email")
    assert new.get_attribute("aria-invalid") == "true" and new.get_attribute("aria-describedby") == "error"


async def test_a_refused_form_is_announced_and_says_whose_row(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _errors_announced)


async def test_a_user_rows_error_says_whose_row(tmp_path: Path) -> None:
    """The users page has limits and password fields on every row: "monthly limit 'lots': ..." read
    out after the page came back did not say which of them was refused."""
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, OPERATOR) as c:
            token = csrf_of((await c.get("/users")).text)
            said = {}
            for action, field, value in (
                ("limits", "monthly_limit", "lots"),
                ("password", "password", "short"),
            ):
                data = {"csrf": token, "action": action, "email": PLAIN, field: value}
                r = await c.post("/users", data=data)
                assert r.status_code == 400
                m = re.search(r'role="alert"[^>]* id="error">([^<]*)</p>', r.text)
                assert m, r.text
                said[action] = html.unescape(m.group(1))
        assert said["limits"].startswith(f"limits of {PLAIN}: monthly limit 'lots': "), said
        assert said["password"].startswith(f"new password for {PLAIN}: password too short"), said
    finally:
        web.counts.close()
        store.close()


def _confirmations_named(driver: Any, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    _log_in(driver, base, password)
    driver.get(base + "/users")
    row = f'#users tr[data-email="{BOB}"] '
    box = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row + 'input[name="confirm"]')))
    assert box.accessible_name == f"sure: remove {BOB}"
    # The operator logged in with the initial password and has not given it again: asked for it.
    sudo = driver.find_elements(By.CSS_SELECTOR, row + 'input[name="current_password"]')
    names = sorted(field.accessible_name for field in sudo)
    assert names == [
        f"your password, to set the password of {BOB}",
        f"your password, to set the role of {BOB} (needed to promote, not to lower the role)",
    ], names
    driver.get(base + "/operator/accounts")
    box = wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, '#accounts tr[data-account="rival"] input[name="confirm"]')
        )
    )
    assert box.accessible_name == "sure: suspend rival"
    sudo = driver.find_element(By.CSS_SELECTOR, '#add-account input[name="current_password"]')
    assert sudo.accessible_name == "your password, to create an account with relay networks"
    driver.get(base + "/account")
    box = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#optouts input[name="confirm"]')))
    assert box.accessible_name == f"sure: take {OPTED_OUT} off the opt-out list"
    # Every box on these pages is named for what it confirms.
    for page in ("/users", "/operator/accounts", "/account"):
        driver.get(base + page)
        wait.until(ec.presence_of_element_located((By.ID, "logout")))
        boxes = driver.find_elements(By.CSS_SELECTOR, 'input[name="confirm"][value="yes"]')
        assert boxes and all(b.accessible_name.startswith("sure: ") for b in boxes), page


async def test_each_confirmation_and_password_field_names_what_it_is_for(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _confirmations_named)


async def test_the_cancel_box_names_the_message(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, OPERATOR) as c:
            page = (await c.get(f"/messages/{store.mine}")).text  # type: ignore[attr-defined]
        assert f'aria-label="sure: cancel message {store.mine}"' in page  # type: ignore[attr-defined]
    finally:
        web.counts.close()
        store.close()


def _ax(driver: Any) -> list[tuple[str, str]]:
    """The roles and names of the tables, their header cells and the meters, as Chromium has them."""
    nodes = driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    return [
        (n["role"]["value"], str(n.get("name", {}).get("value", "")))
        for n in nodes
        if not n.get("ignored")
        and n.get("role", {}).get("value") in ("table", "columnheader", "rowheader", "meter")
    ]


def _tables_named(driver: Any, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    _log_in(driver, base, password)
    for page in ("/", "/?account=acme", "/users", "/operator/accounts", "/account"):
        driver.get(base + page)
        wait.until(ec.presence_of_element_located((By.ID, "logout")))
        ax = _ax(driver)
        assert ax, page
        for role, name in ax:
            assert name.strip(), (page, role, ax)  # no table, header or meter without a name
    driver.get(base + "/users")
    assert wait.until(ec.presence_of_element_located((By.ID, "users"))).accessible_name == "Users of acme"
    assert {"email", "role", "remove"} <= {name for role, name in _ax(driver) if role == "columnheader"}
    driver.get(base + "/?account=acme")
    wait.until(ec.presence_of_element_located((By.ID, "logout")))
    meters = {name for role, name in _ax(driver) if role == "meter"}
    assert f"{BOB}: 0 parts this month, no limit" in meters, meters
    assert "account acme: 0 parts this month, no limit" in meters, meters
    driver.get(base + "/")
    wait.until(ec.presence_of_element_located((By.ID, "logout")))
    assert driver.find_element(By.ID, "accounts").accessible_name.startswith("Use in ")
    assert "rival: 0 parts this month, no limit" in {name for role, name in _ax(driver) if role == "meter"}


async def test_tables_headers_and_meters_have_names(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _tables_named)


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _rgb(css: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, [\d.]+)?\)", css)
    assert m, css
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _field_edges(driver: Any, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    _log_in(driver, base, password)
    white = (255, 255, 255)
    page_bg = _rgb(driver.execute_script("return getComputedStyle(document.body).backgroundColor"))
    for page, css in (
        ("/users", f'#users tr[data-email="{BOB}"] input[name="monthly_limit"]'),
        ("/users", f'#users tr[data-email="{BOB}"] select'),
        ("/users", "#new-email"),
        ("/account", '#settings input[name="end_marker"]'),
        ("/account", '#settings select[name="split_mode"]'),
        ("/messages", 'input[name="number"]'),
        ("/messages", 'select[name="state"]'),
    ):
        driver.get(base + page)
        field = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
        edge = _rgb(field.value_of_css_property("border-top-color"))
        for against in (white, page_bg):
            assert _contrast(edge, against) >= 3, (page, css, edge, against, _contrast(edge, against))


async def test_form_field_edges_stand_out_three_to_one(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _field_edges)


async def test_the_recorded_mail_page_is_titled_for_itself(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, OPERATOR) as c:
            recorded = (await c.get("/messages/recorded")).text
            messages = (await c.get("/messages")).text
        assert "<title>Mail recorded, not sent as SMS · smsgw</title>" in recorded
        assert "<title>Messages · smsgw</title>" in messages
    finally:
        web.counts.close()
        store.close()


async def test_every_table_on_every_page_has_a_name(tmp_path: Path) -> None:
    # A screen reader names a table by its caption or the heading aria-labelledby points at; the
    # premium, billing, links, conversations and message pages' tables had neither ("table", and
    # nothing said which). Every page the operator and a company admin reach, with content on each.
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    mine = store.mine  # type: ignore[attr-defined]
    pages = ["/", "/users", "/accounts", "/account", "/messages", "/messages/recorded", f"/messages/{mine}"]
    pages += ["/conversations", "/premium", "/billing", "/links", "/users?account=acme"]
    try:
        unnamed, seen = [], 0
        for who in (OPERATOR, ADMIN):
            async with as_user(web, who) as c:
                for path in pages:
                    r = await c.get(path)
                    if r.status_code != 200:
                        continue  # a page this login does not reach
                    for table in re.findall(r"<table\b[^>]*>(?:\s*<caption\b[^>]*>)?", r.text):
                        seen += 1
                        if "<caption" not in table and "aria-labelledby=" not in table:
                            unnamed.append((who, path, table))
        assert unnamed == []
        assert seen >= 25  # every page was read, with its tables
    finally:
        web.counts.close()
        store.close()
