"""The panel for low-vision users: form fields one can find, and pages titled for what they show.

A review found the form fields' edges at 1.36:1 against white (WCAG 1.4.11 asks 3:1 of a control's
edge) and the recorded mail's page titled "Messages", the list it is reached from. Real headless
Chromium against the real daemon, set up as tests/test_web_browser.py is (it fails, not skips, without
a browser under CI=true); the title through the panel's ASGI app.
"""

from __future__ import annotations

import asyncio
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
from tests.web_helpers import OPERATOR, as_user, panel_store, web_context

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


def _log_in(driver: Any, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "/login")
    WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.ID, "email"))).send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 15).until(ec.text_to_be_present_in_element((By.ID, "whoami"), STAFF))


async def _in_browser(tmp_path: Path, visit: Callable[[Any, str, str], None]) -> None:
    with chromium() as driver:
        async with panel(tmp_path) as (base, password):
            await asyncio.to_thread(visit, driver, base, password)


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
