"""A box unticked before the session ended is still unticked on the form put back, in real Chromium.

A browser never posts an unticked checkbox, so the form kept for the login had no word of it, and the
page put back showed the stored tick: Save after the login silently kept the setting the admin had
turned off. Set up as tests/test_web_browser_forms.py is (it fails, not skips, without a browser
under CI=true); the idle time is the sessions' clock moved on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import STAFF
from tests.test_web_accessibility import _log_in
from tests.test_web_browser_forms import _expired, _in_browser


def _unticked(driver: Any, base: str, password: str, gw: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    css = By.CSS_SELECTOR
    box = '#settings input[name="transliterate"]'
    _log_in(driver, base, password)
    driver.get(base + "/account")
    wait.until(ec.presence_of_element_located((css, box))).click()  # ticked and saved first
    driver.find_element(css, "#settings button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account acme updated"))
    assert gw.look(lambda: gw.store.accounts.get_account("acme")).transliterate
    driver.find_element(css, box).click()  # then unticked, and away past the idle time
    driver.find_element(css, '#settings input[name="end_marker"]').send_keys("-- bye")
    _expired(gw)
    driver.find_element(css, "#settings button").click()
    wait.until(ec.presence_of_element_located((By.ID, "kept")))
    driver.find_element(By.ID, "email").send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.presence_of_element_located((By.ID, "restored")))
    assert driver.find_element(css, '#settings input[name="end_marker"]').get_attribute("value") == "-- bye"
    assert not driver.find_element(css, box).is_selected()
    driver.find_element(css, "#settings button").click()  # Save, as shown
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account acme updated"))
    acc = gw.look(lambda: gw.store.accounts.get_account("acme"))
    assert (acc.end_marker, acc.transliterate) == ("-- bye", 0)


async def test_a_box_unticked_before_the_session_ended_stays_unticked_in_the_browser(tmp_path: Path) -> None:
    await _in_browser(tmp_path, _unticked)
