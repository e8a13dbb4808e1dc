"""A form of the panel posted by another site's page, in a real headless Chromium with the admin logged
in: the browser sends no session cookie with it (SameSite=Strict), and the page said "your session had
ended, so the form was not sent", though the session was alive in that very browser. It now says the
form came from another site, nothing is changed, and the panel's own link finds the admin still logged
in. The other site is a page of `localhost`, the panel `127.0.0.1`: two sites to the browser. Set up as
tests/test_web_browser.py is."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.test_web_accessibility import _log_in
from tests.web_helpers import admin_in_chromium

ADMIN, PASSWORD = "boss@acme.example", "admin password 1"


class _DualStack(ThreadingHTTPServer):
    """Reached as `localhost`, which the browser may look up as ::1 or as 127.0.0.1."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


@contextmanager
def other_site(panel: str) -> Iterator[str]:
    """A page that posts the panel's Account form as soon as it is opened: its address."""
    page = (
        f'<!doctype html><form method="post" action="{panel}/account">'
        '<input name="csrf" value="guessed"><input name="end_marker" value="-- planted">'
        '<input name="split_mode" value="concatenated"><input name="dlr_mail" value="none">'
        '<input name="overflow" value="truncate"></form><script>document.forms[0].submit()</script>'
    ).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = _DualStack(("::", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _visit(driver: Any, base: str, elsewhere: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    _log_in(driver, base, PASSWORD, ADMIN)
    driver.get(elsewhere)
    wait.until(ec.url_to_be(base + "/account"))  # the other site's form posted
    wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    said = driver.find_element(By.TAG_NAME, "h1").text
    driver.find_element(By.LINK_TEXT, "Back to the dashboard").click()
    wait.until(ec.presence_of_element_located((By.ID, "logout")))
    return said, driver.find_element(By.ID, "whoami").text


async def test_a_form_another_site_posts_is_said_to_come_from_there(tmp_path: Path) -> None:
    async with admin_in_chromium(tmp_path, ADMIN, PASSWORD) as (driver, base, gw):
        with other_site(base) as elsewhere:
            said, whoami = await asyncio.to_thread(_visit, driver, base, elsewhere)
        marker = gw.store.accounts.get_account("acme").end_marker
    assert said.startswith("this form came from a page of another site, so it was not sent"), said
    assert ADMIN in whoami  # logged in all along
    assert marker is None  # nothing changed
