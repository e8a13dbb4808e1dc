"""The panel as its users see it: a real headless Chromium (Debian's chromium + chromium-driver) against
the real daemon, and /metrics read with Prometheus' own parser after real traffic.

Selenium is told where chromedriver is, so nothing is downloaded. Without a browser the test is
skipped on a workstation and fails under CI=true, where `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acl.passwords import hash_password
from billing_reports.monthly import Month
from billing_reports.writer import file_name, month_dir, write_month
from gateway.web.server import INITIAL_PASSWORD_FILE
from tests.conftest import DOMAIN, STAFF, mail, make_config, running_gateway, send_blocking
from tests.fakes.smsc import HappySMSC

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WEB = '[web]\nenabled = true\nlisten = "127.0.0.1:0"\n'
RIVAL_ADMIN, RIVAL_PASSWORD = "boss@rival.example", "rival password 1"


def _have_browser() -> bool:
    return (
        Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists() and shutil.which("chromedriver") is not None
    )


@contextmanager
def chromium(downloads: Path | None = None) -> Iterator[Any]:
    if not _have_browser():
        if os.environ.get("CI") == "true":
            pytest.fail(
                "chromium and chromium-driver are required under CI (apt-get install chromium-driver)"
            )
        pytest.skip("chromium / chromium-driver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _browse(
    driver: Any,
    base: str,
    smtp_port: int,
    operator_password: str,
    rival_message: int,
    bill: Callable[[], Path],
    downloads: Path,
) -> None:
    """The whole visit, run in a worker thread while the daemon serves on the test's loop."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)

    def log_in(email: str, password: str) -> None:
        driver.get(base + "/login")
        wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(email)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), email))

    def log_out() -> None:
        driver.find_element(By.ID, "logout").click()
        wait.until(ec.presence_of_element_located((By.ID, "email")))

    log_in(STAFF, operator_password)
    driver.get(base + "/users")
    wait.until(ec.presence_of_element_located((By.ID, "new-email"))).send_keys("new@acme.example")
    driver.find_element(By.ID, "add").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "user new@acme.example added"))
    row = '#users tr[data-email="new@acme.example"] '
    limit = driver.find_element(By.CSS_SELECTOR, row + 'input[name="monthly_limit"]')
    limit.clear()
    limit.send_keys("500")
    driver.find_element(By.CSS_SELECTOR, row + "button.set-limits").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "user new@acme.example updated"))
    assert (
        driver.find_element(By.CSS_SELECTOR, row + 'input[name="monthly_limit"]').get_attribute("value")
        == "500"
    )

    result = send_blocking(smtp_port, mail(f"601123456@{DOMAIN}", "Panel check"), [f"601123456@{DOMAIN}"])
    assert result.error is None and result.refused == {}

    def delivered_listed(d: Any) -> bool:
        d.get(base + "/messages?number=601123456")
        return "delivered" in d.find_element(By.ID, "messages").text

    wait.until(delivered_listed)
    driver.find_element(By.CSS_SELECTOR, "#messages a[href^='/messages/']").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "state"), "delivered"))
    assert "Panel check" in driver.find_element(By.ID, "text").text
    dlrs = driver.find_element(By.ID, "dlrs").text
    assert "main" in dlrs and "delivered" in dlrs  # the DLR's link and status

    # The month is billed (as at a month's end) and its acme file downloaded from the billing page.
    billed = bill()
    driver.get(base + "/billing")
    link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#billing a[href$='/acme.txt']")))
    link.click()
    got = downloads / f"{billed.parent.name}-acme.txt"
    wait.until(lambda d: got.exists() and got.stat().st_size == billed.stat().st_size)
    assert got.read_bytes() == billed.read_bytes()
    assert "+48601123456" in got.read_text(encoding="utf-8")
    log_out()

    # Another company's admin edits the URL to reach acme's message: answered like a missing one.
    log_in(RIVAL_ADMIN, RIVAL_PASSWORD)
    own = driver.current_url
    driver.get(f"{base}/messages/{rival_message}")
    wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    assert driver.find_element(By.TAG_NAME, "h1").text == "not found"
    assert "Panel check" not in driver.page_source and "601123456" not in driver.page_source
    assert own.endswith("/")
    log_out()


async def test_admin_journey_in_a_real_browser(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium(downloads) as driver:
        async with (
            HappySMSC() as smsc,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
        ):
            store = gw.store
            password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
            digest = hash_password(RIVAL_PASSWORD)

            def rival() -> None:
                store.accounts.add_account("rival")
                store.accounts.add_user(RIVAL_ADMIN, "rival", password_hash=digest)
                store.accounts.set_user(RIVAL_ADMIN, role="admin")

            await store.write(rival)
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            # The first message of this store will have id 1: acme's, which the rival admin tries.
            cfg = gw.config
            tz = ZoneInfo(cfg.gateway.timezone)

            def bill() -> Path:
                month = Month.containing(time.time(), tz)
                write_month(cfg.db_path, cfg.state_dir, month, tz)
                return month_dir(cfg.state_dir, month) / file_name("acme")

            await asyncio.to_thread(_browse, driver, base, gw.port, password, 1, bill, downloads)
            assert store.admin.message_info(1)["account"] == "acme"
            assert store.accounts.find_user("new@acme.example").monthly_limit == 500


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_metrics_counters_equal_the_stores_counts_after_real_traffic(tmp_path: Path) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        for n in ("601000001", "601000002", "601000013"):
            assert (await gw.send(mail(f"{n}@{DOMAIN}", "metrics"))).error is None
        refused = await gw.send(mail(f"12@{DOMAIN}", "metrics"))  # not a phone number: 550 at RCPT
        assert refused.refused or refused.error
        await gw.until(lambda: all(s == "delivered" for s in gw.states()) and len(gw.states()) == 3)
        base = f"http://127.0.0.1:{gw.daemon.web.port}"
        on_loop: list[str] = []  # what the scrape runs on the event loop's connection
        gw.store.db.conn.set_trace_callback(on_loop.append)
        try:
            status, text = await asyncio.to_thread(_get, base + "/metrics")
        finally:
            gw.store.db.conn.set_trace_callback(None)
        assert status == 200
        # Counting the whole history takes seconds on a large store: never on the loop's connection.
        assert not [sql for sql in on_loop if "GROUP BY" in sql], on_loop
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        store = gw.store
        assert (
            samples[("smsgw_messages_accepted_total", (("account", "acme"),))] == store.admin.count_messages()
        )
        delivered = samples[("smsgw_messages_total", (("account", "acme"), ("state", "delivered")))]
        assert delivered == store.admin.count_messages("delivered") == 3
        parts = samples[("smsgw_parts_total", (("link", "main"), ("state", "delivered")))]
        assert (
            parts
            == store.db.conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'delivered'").fetchone()[0]
        )
        assert samples[("smsgw_link_up", (("link", "main"),))] == 1.0
        assert samples[("smsgw_link_submitted_total", (("link", "main"),))] == 3
        # Replies by code, counted where the SMTP server writes them: three DATA, one refused RCPT.
        assert samples[("smsgw_smtp_replies_total", (("code", "354"),))] == 3
        assert samples[("smsgw_smtp_replies_total", (("code", "550"),))] == 1
        assert samples[("smsgw_smtp_replies_total", (("code", "250"),))] >= 3 * 4  # EHLO MAIL RCPT DATA
        assert await asyncio.to_thread(_get, base + "/healthz") == (200, "ok\n")


def _odd_names(driver: Any, base: str, operator_password: str, billing_name: str) -> None:
    """The operator edits an account named "A&B" from the accounts list, and a suspension wants its
    box ticked: the browser itself refuses the form (no JavaScript), and nothing is posted."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(STAFF)
    driver.find_element(By.ID, "password").send_keys(operator_password)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), STAFF))

    driver.get(base + "/operator/accounts")
    row = '#accounts tr[data-account="A&B"] '
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row + "a.settings"))).click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Account A&B"))
    sender = driver.find_element(By.CSS_SELECTOR, '#settings input[name="sender"]')
    sender.clear()
    sender.send_keys("AandB")
    driver.find_element(By.CSS_SELECTOR, '#settings button[type="submit"]').click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account A&B updated"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Account A&B"

    driver.get(base + "/operator/accounts")
    suspend = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row + "button.danger")))
    assert suspend.accessible_name == "suspend A&B"
    reason = driver.find_element(By.CSS_SELECTOR, row + 'input[name="reason"]')
    assert reason.accessible_name == "reason to suspend A&B"
    suspend.click()  # the box is not ticked: the browser keeps the form
    box = driver.find_element(By.CSS_SELECTOR, row + 'input[name="confirm"]')
    assert box.get_attribute("validationMessage")
    assert not driver.find_elements(By.ID, "done")
    box.click()
    driver.find_element(By.CSS_SELECTOR, row + "button.danger").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "done"), "account A&B suspended"))

    driver.get(base + "/billing")
    link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#billing a[href*='%25C5%2581']")))
    assert link.text == billing_name


async def test_operator_edits_odd_account_names_and_confirms_a_suspension_in_a_real_browser(
    tmp_path: Path,
) -> None:
    with chromium() as driver:
        async with (
            HappySMSC() as smsc,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
        ):
            store = gw.store
            password = (gw.config.state_dir / INITIAL_PASSWORD_FILE).read_text().strip()
            lodz = "Łódź Sp. z o.o."

            def accounts() -> None:
                for name in ("A", "A&B", lodz):
                    store.accounts.add_account(name)

            await store.write(accounts)
            cfg = gw.config
            tz = ZoneInfo(cfg.gateway.timezone)
            month = Month.containing(time.time(), tz)
            await asyncio.to_thread(write_month, cfg.db_path, cfg.state_dir, month, tz)
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            await asyncio.to_thread(_odd_names, driver, base, password, lodz)
            assert store.accounts.get_account("A&B").sender == "AandB"
            assert store.accounts.get_account("A").sender is None  # the form once saved into "A"
            assert store.accounts.get_account("A&B").suspended_at is not None
            assert store.accounts.get_account("A").suspended_at is None
