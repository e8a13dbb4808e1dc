"""A company admin's panel in a real headless Chromium on an 800 px wide window: the header wraps instead
of pushing "Log out" off the screen, a reload after a save does not post the form again, and a link
opened while logged out leads through the login to it. Set up as tests/test_web_browser.py is (it
fails, not skips, without a browser under CI=true)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from acl.passwords import hash_password
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, chromium

# A real admin's address: long enough that the header's last line holds little else.
ADMIN, PASSWORD = "accounts.payable.department@acme-industries.example", "admin password 1"
PAGES = ("/", "/messages", "/users", "/account", "/conversations", "/premium", "/billing")


def _fits(driver: Any) -> None:
    """No sideways scrolling, and "Log out" and the whole address on screen."""
    width = driver.execute_script("return window.innerWidth")
    page = driver.execute_script("return document.documentElement.scrollWidth")
    assert page <= width, (driver.current_url, page, width)
    for element in ("logout", "whoami"):
        box = driver.execute_script(
            "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
            " return [r.left, r.right, r.top, r.bottom];",
            element,
        )
        left, right, top, bottom = box
        assert (
            0 <= left
            and right <= width
            and 0 <= top
            and bottom <= driver.execute_script("return window.innerHeight")
        ), (driver.current_url, element, box, width)


def _visit(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.set_window_size(800, 600)
    # A link opened logged out: the login, then the page the link named.
    driver.get(base + "/users")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), ADMIN))
    assert driver.current_url == base + "/users"
    for path in PAGES:
        driver.get(base + path)
        wait.until(ec.presence_of_element_located((By.ID, "logout")))
        _fits(driver)
        assert driver.find_element(By.ID, "logout").is_displayed()

    driver.get(base + "/users")
    wait.until(ec.presence_of_element_located((By.ID, "new-email"))).send_keys("new@acme-industries.example")
    driver.find_element(By.ID, "add").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "user new@acme-industries.example added"))
    driver.refresh()  # F5: the page again, not the form again (no "Confirm Form Resubmission")
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "user new@acme-industries.example added"))
    assert not driver.find_elements(By.ID, "error")
    driver.back()
    driver.forward()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "user new@acme-industries.example added"))
    assert not driver.find_elements(By.ID, "error")


async def test_company_admins_panel_fits_an_800_px_window_and_reloads_safely(tmp_path: Path) -> None:
    with chromium() as driver:
        async with (
            HappySMSC() as smsc,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
        ):
            store = gw.store
            digest = hash_password(PASSWORD)

            def admin() -> None:
                store.accounts.add_user(ADMIN, "acme", password_hash=digest)
                store.accounts.set_user(ADMIN, role="admin")

            await store.write(admin)
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            await asyncio.to_thread(_visit, driver, base)
            users = [u.email for u in store.accounts.list_users("acme")]
            assert users.count("new@acme-industries.example") == 1
