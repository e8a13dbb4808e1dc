"""A refused form, and one sent after the session ended, in real headless Chromium.

The field at fault is marked (aria-invalid, with the alert as its description) on the settings,
new-account, premium and opt-out forms, as only the add-user form was; the rest of the form is as
typed. A company admin away past the idle time who pressed Save landed on a bare "please log in"
and typed the form again: now the login page says the form was not sent, and the form's page after
the login has it back as typed (kept on the server for that user's login), never a password.
Set up as tests/test_web_accessibility.py is (it fails, not skips, without a browser under CI=true);
the idle time is the sessions' clock moved on, the daemon's own check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from acl.passwords import hash_password
from gateway.web import security
from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_accessibility import _log_in
from tests.test_web_browser import WEB, chromium

BOB = "bob@acme.example"
BOB_PASSWORD = "bob password 1"


@asynccontextmanager
async def panel(tmp_path: Path) -> AsyncIterator[tuple[str, str, Any]]:
    """The daemon with a rival account and a plain user bob: its address, the operator's password and
    the daemon (its store, its panel's sessions)."""
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        digest = hash_password(BOB_PASSWORD)

        def seed() -> None:
            gw.store.accounts.add_account("rival")
            gw.store.accounts.add_user(BOB, "acme", password_hash=digest)

        await gw.store.write(seed)
        password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
        yield f"http://127.0.0.1:{gw.daemon.web.port}", password, gw


async def _in_browser(tmp_path: Path, visit: Callable[[Any, str, str, Any], None]) -> None:
    with chromium() as driver:
        async with panel(tmp_path) as (base, password, gw):
            loop = asyncio.get_running_loop()
            gw.look = lambda read: asyncio.run_coroutine_threadsafe(_on_loop(read), loop).result(15)
            await asyncio.to_thread(visit, driver, base, password, gw)


async def _on_loop(read: Callable[[], Any]) -> Any:
    """`read` on the loop's thread: nothing but it touches the daemon's database connection."""
    return read()


def _marked(driver: Any) -> list[str]:
    """The names of the fields marked invalid on the page (a fieldset: "fieldset")."""
    from selenium.webdriver.common.by import By

    fields = driver.find_elements(By.CSS_SELECTOR, '[aria-invalid="true"]')
    return [f.get_attribute("name") or f.tag_name for f in fields]


def _refused(driver: Any, field: Any) -> None:
    """The page shown again after a refusal: the error an alert with the focus, the field pointing
    at it and the only one marked."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    error = WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.ID, "error")))
    assert error.aria_role == "alert" and driver.switch_to.active_element == error
    assert field.get_attribute("aria-invalid") == "true", field.get_attribute("outerHTML")
    assert field.get_attribute("aria-describedby") == "error"
    assert _marked(driver) == [field.get_attribute("name") or field.tag_name], _marked(driver)


def _refusals(driver: Any, base: str, password: str, gw: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    css = By.CSS_SELECTOR
    # A refused login: the whole form's (which of the two is wrong stays unsaid), the address back.
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys("not the password")
    driver.find_element(By.ID, "login").click()
    wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert driver.find_element(By.ID, "email").get_attribute("value") == STAFF
    assert driver.find_element(By.ID, "password").get_attribute("value") == "" and _marked(driver) == []
    _log_in(driver, base, password)
    # Account settings: the quiet hours refused, the end marker typed beside them kept.
    driver.get(base + "/account")
    wait.until(ec.presence_of_element_located((css, '#settings input[name="quiet_hours"]'))).send_keys(
        "25:00-99"
    )
    driver.find_element(css, '#settings input[name="end_marker"]').send_keys("-- bye")
    driver.find_element(css, "#settings button").click()
    wait.until(ec.presence_of_element_located((By.ID, "error")))
    _refused(driver, driver.find_element(css, '#settings input[name="quiet_hours"]'))
    assert driver.find_element(css, '#settings input[name="end_marker"]').get_attribute("value") == "-- bye"
    assert (
        driver.find_element(css, '#settings input[name="quiet_hours"]').get_attribute("value") == "25:00-99"
    )
    # Opt-out: the number field, as typed.
    driver.find_element(By.ID, "optout-number").send_keys("not a number")
    driver.find_element(By.ID, "optout-number").submit()
    wait.until(ec.presence_of_element_located((By.ID, "error")))
    _refused(driver, driver.find_element(By.ID, "optout-number"))
    assert driver.find_element(By.ID, "optout-number").get_attribute("value") == "not a number"
    # A new account: its networks refused, its name and sender kept.
    driver.get(base + "/operator/accounts")
    form = "#add-account "
    wait.until(ec.presence_of_element_located((css, form + 'input[name="name"]'))).send_keys("newco")
    driver.find_element(css, form + 'input[name="sender"]').send_keys("NEWCO")
    driver.find_element(css, form + 'input[name="networks"]').send_keys("10.0.0.0/8 nonsense")
    driver.find_element(css, form + 'input[name="current_password"]').send_keys(password)
    driver.find_element(css, form + "button").click()
    wait.until(ec.presence_of_element_located((By.ID, "error")))
    _refused(driver, driver.find_element(css, form + 'input[name="networks"]'))
    assert driver.find_element(css, form + 'input[name="name"]').get_attribute("value") == "newco"
    assert driver.find_element(css, form + 'input[name="sender"]').get_attribute("value") == "NEWCO"
    assert driver.find_element(css, form + 'input[name="current_password"]').get_attribute("value") == ""
    # A premium service: its mail address refused.
    driver.get(base + "/premium")
    form = "#add-service "
    wait.until(ec.presence_of_element_located((css, form + 'input[name="password"]'))).send_keys("KP321")
    email = driver.find_element(css, form + 'input[name="email"]')
    driver.execute_script("arguments[0].type = 'text'", email)  # past the browser's own check
    email.send_keys("nobody")
    driver.find_element(css, form + "button").click()
    wait.until(ec.presence_of_element_located((By.ID, "error")))
    _refused(driver, driver.find_element(css, form + 'input[name="email"]'))
    assert driver.find_element(css, form + 'input[name="password"]').get_attribute("value") == "KP321"
    # About the whole form (the operator's own login): nothing marked.
    driver.get(base + "/users")
    row = f'#users tr[data-email="{STAFF}"] '
    wait.until(ec.presence_of_element_located((css, row + 'input[name="confirm"]'))).click()
    driver.find_element(css, row + "button.danger").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "error"), "your own login"))
    assert _marked(driver) == []


async def test_refused_forms_mark_their_field_in_the_browser(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _refusals)


def _expired(gw: Any) -> None:
    """The idle time past: the sessions' clock moved on, every session of the panel then ended."""
    sessions = gw.daemon.web.web.sessions
    ahead = (security.IDLE_MINUTES + 1) * 60 + (sessions.clock() - time.time())
    sessions.clock = lambda: time.time() + ahead


def _typed_kept(driver: Any, base: str, password: str, gw: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    css = By.CSS_SELECTOR
    _log_in(driver, base, password)
    driver.get(base + "/account")
    marker = wait.until(ec.presence_of_element_located((css, '#settings input[name="end_marker"]')))
    marker.send_keys("-- bye")
    driver.find_element(css, '#settings input[name="quiet_hours"]').send_keys("22:00-07:00")
    driver.find_element(css, '#settings input[name="bulk"]').click()
    _expired(gw)
    driver.find_element(css, "#settings button").click()
    error = wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert "your session had ended, so the form was not sent" in error.text
    assert error.aria_role == "alert" and driver.switch_to.active_element == error
    assert "put back into the form after you log in" in driver.find_element(By.ID, "kept").text
    assert (
        gw.look(lambda: gw.store.accounts.get_account("acme")).end_marker is None
    )  # nothing saved without a session
    driver.find_element(By.ID, "email").send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    restored = wait.until(ec.presence_of_element_located((By.ID, "restored")))
    assert restored.aria_role == "status" and "check it and send it again" in restored.text.lower()
    assert driver.execute_script("return location.pathname") == "/account"
    assert driver.find_element(css, '#settings input[name="end_marker"]').get_attribute("value") == "-- bye"
    assert (
        driver.find_element(css, '#settings input[name="quiet_hours"]').get_attribute("value")
        == "22:00-07:00"
    )
    assert driver.find_element(css, '#settings input[name="bulk"]').is_selected()
    driver.find_element(css, "#settings button").click()  # sent again, with the new session's token
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account acme updated"))
    acc = gw.look(lambda: gw.store.accounts.get_account("acme"))
    assert (acc.end_marker, acc.quiet_start, acc.quiet_end, acc.bulk) == ("-- bye", "22:00", "07:00", 1)
    assert driver.find_elements(By.ID, "restored") == []  # once: the page after the save is as saved

    # A password typed is never kept: not on the server, not in the tab's storage, not put back.
    driver.get(base + "/users")
    row = f'#users tr[data-email="{BOB}"] '
    wait.until(ec.presence_of_element_located((css, row + 'input[name="password"]'))).send_keys(
        "new bob secret 9"
    )
    for sudo in driver.find_elements(css, row + 'input[name="current_password"]'):
        sudo.send_keys(password)  # the operator's own, asked for setting another's
    _expired(gw)
    driver.find_element(css, row + 'button[aria-label^="set the password"]').click()
    wait.until(ec.presence_of_element_located((By.ID, "kept")))
    sessions = gw.daemon.web.web.sessions
    kept = gw.look(lambda: repr(list(sessions.kept._by_token.values())))
    assert BOB in kept and "new bob secret 9" not in kept and password not in kept, kept
    assert driver.execute_script("return sessionStorage.getItem('smsgw.typed')") is None
    driver.find_element(By.ID, "email").send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.presence_of_element_located((By.ID, "restored")))
    assert driver.find_element(css, row + 'input[name="password"]').get_attribute("value") == ""
    assert gw.look(lambda: len(sessions.kept)) == 0


async def test_a_form_sent_after_the_session_ended_is_back_after_the_login(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _typed_kept)
