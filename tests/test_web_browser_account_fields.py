"""The Account page's fields as a company admin sees them in a real headless Chromium at the panel's
usual width (1280 px, tests/test_web_browser.py's window): the "Cut the text from a line starting with"
box was a textarea the form's CSS did not size, about a third as wide as the fields above and below
it, in the browser's monospace font, its example placeholder cut off after two lines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.web_helpers import admin_in_chromium

ADMIN, PASSWORD = "boss@acme.example", "admin password 1"


def _measure(driver: Any, base: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/account")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.presence_of_element_located((By.ID, "cut-from")))
    return driver.execute_script(
        """
        const box = document.getElementById('cut-from');
        const marker = document.querySelector('input[name=end_marker]');
        const style = getComputedStyle(box), other = getComputedStyle(marker);
        const shown = {
            window: window.innerWidth,
            box: box.getBoundingClientRect().width,
            marker: marker.getBoundingClientRect().width,
            font: [style.fontFamily === other.fontFamily, style.fontSize, other.fontSize],
        };
        // The placeholder's own lines cannot be measured: the same text as a value can.
        box.value = box.placeholder;
        shown.fits = box.scrollHeight <= box.clientHeight;
        shown.lines = [box.scrollHeight, box.clientHeight];
        box.value = '';
        return shown;
        """
    )


async def test_the_cut_from_box_is_as_wide_as_the_other_fields_and_shows_its_placeholder(
    tmp_path: Path,
) -> None:
    async with admin_in_chromium(tmp_path, ADMIN, PASSWORD) as (driver, base, _):
        shown = await asyncio.to_thread(_measure, driver, base)
    assert shown["window"] >= 1200, shown  # the panel's usual width, not a phone's
    assert abs(shown["box"] - shown["marker"]) < 1, shown
    same_family, size, other_size = shown["font"]
    assert same_family and size == other_size, shown
    assert shown["fits"], shown
