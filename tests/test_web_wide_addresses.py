"""A long sender address wraps in its cell instead of widening the page: a user with a 300-character
local part (added before `user add` capped it at RFC 5321's 64) made the Messages list 3,500 px wide
and the dashboard 3,285 px in a 1,280 px window, its state and reason columns off-screen on every row.

Real headless Chromium against the real daemon, the mail sent through the real relay port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import DOMAIN, STAFF, mail, make_config, running_gateway, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, chromium

LONG = "a" * 300 + "@acme.example"
PAGES = ("/messages", "/?account=acme", "/users?account=acme")


def _widths(driver: Any, base: str, smtp_port: int, operator_password: str) -> dict[str, tuple[int, int]]:
    """Each page's scroll width and the window's width, once the long sender's SMS is listed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys(operator_password)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), STAFF))

    result = send_blocking(
        smtp_port, mail(f"601123456@{DOMAIN}", "Wide"), [f"601123456@{DOMAIN}"], sender=LONG
    )
    assert result.error is None and result.refused == {}

    def listed(d: Any) -> bool:
        d.get(base + "/messages?number=601123456")
        return "delivered" in d.find_element(By.ID, "messages").text

    wait.until(listed)
    widths = {}
    for page in PAGES:
        driver.get(base + page)
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
        assert LONG[:40] in driver.page_source, page
        widths[page] = tuple(
            driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        )
    return widths


async def test_a_long_sender_address_wraps_rather_than_widen_the_page(tmp_path: Path) -> None:
    with chromium() as driver:
        async with (
            HappySMSC() as smsc,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
        ):
            password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
            await gw.store.write(lambda: gw.store.accounts.add_user(LONG, "acme"))
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            widths = await asyncio.to_thread(_widths, driver, base, gw.port, password)
    for page, (scroll, window) in widths.items():
        assert scroll <= window, (page, scroll, window)
