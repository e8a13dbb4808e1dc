"""A company admin gives their own password in a real headless Chromium before making a new login an
admin: the field is on the forms while the session has not given it, the refusal keeps the role chosen,
and once given the next credential-making form goes without it. Set up as tests/test_web_browser.py is
(it fails, not skips, without a browser under CI=true)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from acl.passwords import hash_password
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, chromium

ADMIN, PASSWORD = "boss@acme.example", "admin password 1"
NEW = "new@acme.example"
SUDO = 'input[aria-label^="your password, to "]'  # each names the row and what it confirms


def _visit(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), ADMIN))
    driver.get(base + "/users")
    wait.until(ec.presence_of_element_located((By.ID, "new-email"))).send_keys(NEW)
    driver.find_element(By.ID, "add").click()  # no credential: no password asked
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), f"user {NEW} added"))
    row = f'#users tr[data-email="{NEW}"] '

    # Without it: refused, nothing changed, the role chosen still chosen.
    Select(driver.find_element(By.CSS_SELECTOR, row + 'select[name="role"]')).select_by_visible_text("admin")
    driver.find_element(By.CSS_SELECTOR, row + f'button[aria-label="set the role of {NEW}"]').click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "error"), "needs your own password"))
    role = Select(driver.find_element(By.CSS_SELECTOR, row + 'select[name="role"]'))
    assert role.first_selected_option.text == "admin"

    # With it: the new login's password set, and the window open for the role that follows.
    password_form = row + "td:nth-child(3) form "
    sudo = driver.find_element(By.CSS_SELECTOR, password_form + SUDO)
    assert sudo.is_displayed()
    driver.find_element(By.CSS_SELECTOR, password_form + 'input[name="password"]').send_keys("new login pw 1")
    sudo.send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, password_form + "button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), f"password set for {NEW}"))
    assert not driver.find_elements(By.CSS_SELECTOR, SUDO)
    Select(driver.find_element(By.CSS_SELECTOR, row + 'select[name="role"]')).select_by_visible_text("admin")
    driver.find_element(By.CSS_SELECTOR, row + f'button[aria-label="set the role of {NEW}"]').click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), f"user {NEW} is now admin"))


async def test_making_an_admin_asks_for_the_admins_password_in_a_real_browser(tmp_path: Path) -> None:
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
            user = store.accounts.find_user(NEW)
            assert user is not None and user.role == "admin" and user.password_hash
