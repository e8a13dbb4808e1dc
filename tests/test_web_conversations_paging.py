"""The panel's conversations list, a page at a time: with 259 conversations the operator saw the newest
100 and an admin 75 with nothing saying the list was cut, and an older conversation could not be reached.
Its pages go by (last SMS, id) as the message search goes by id, a phone can be looked up, and the lists
scroll inside their own box on a phone rather than the whole page sideways.

The panel's real server on 127.0.0.1 with a logged-in session, on a real SQLite file; the phone width in a
real headless Chromium (Chrome's device emulation: a headless window is no narrower than 500 px)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.store.db import Store
from gateway.web import services
from gateway.web.app import WebContext
from gateway.web.server import WebServer
from tests.test_web_browser import chromium
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    OTHER_ADMIN,
    PASSWORD,
    add_mail,
    login,
    seeded_store,
    web_context,
)

T0 = 1_780_000_000.0
ACME, RIVAL = 180, 79  # 259 in all: past two operator's pages, and an admin's one


def _seed(store: Store) -> dict[str, list[tuple[float, int, str]]]:
    """(last SMS, id, phone) of each conversation, by the account it is of, written into the file.
    Seven at a time share their last SMS's time (one mail to many phones), across page boundaries."""
    conn, made = store.db.conn, {"acme": [], "rival": []}
    accounts = {a.name: a.id for a in store.accounts.list_accounts()}
    users = {"acme": (ADMIN, "anna@acme.example"), "rival": (OTHER_ADMIN, "carl@rival.example")}
    with store.db.transaction():
        for i in range(ACME + RIVAL):
            spread = (i * RIVAL // (ACME + RIVAL), (i + 1) * RIVAL // (ACME + RIVAL))
            account = "rival" if spread[0] != spread[1] else "acme"  # RIVAL of them, spread evenly
            at, phone = T0 + 60 * (i // 7) + 0.25, f"+48601{i:06d}"
            user = users[account][i % 2]
            cid = conn.execute(
                "INSERT INTO conversations (phone, number, user_email, account_id, domain, subject, text,"
                " started_at, last_mt_at) VALUES (?, '+48100200300', ?, ?, 'sms.example.com', ?, 'hello',"
                " ?, ?)",
                (phone, user, accounts[account], f"offer {i}", at - 5, at),
            ).lastrowid
            made[account].append((at, int(cid), phone))
    return made


def _newest_first(rows: list[tuple[float, int, str]]) -> list[str]:
    return [phone for _, _, phone in sorted(rows, reverse=True)]


@asynccontextmanager
async def _panel(tmp_path: Path, seed: Any) -> AsyncIterator[tuple[WebContext, int, Any]]:
    store = seeded_store(tmp_path)
    seeded = seed(store)
    store.db.serve()
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(web)
    port = await server.start()
    try:
        yield web, port, seeded
    finally:
        await server.stop()
        web.counts.close()
        store.close()


def _listed(page: str) -> tuple[list[str], str | None]:
    """The phones in the conversations table, and where its "Older →" link leads."""
    table = page.split('<table id="conversations">', 1)[1].split("</table>", 1)[0]
    older = re.search(r'<a href="([^"]+)" id="older">Older →</a>', page)
    return re.findall(r"<tr><td class=\"addr\">[^<]*</td><td>([^<]*)</td>", table), html.unescape(
        older.group(1)
    ) if older else None


async def _walk(port: int, email: str, start: str = "/conversations") -> list[list[str]]:
    """Every page, following the older links from the first to the last."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await login(c, email, PASSWORD)
        assert r.status_code == 303, r.text
        pages, link = [], start
        while link is not None:
            assert len(pages) < 10, "the older links go round"
            r = await c.get(link)
            assert r.status_code == 200, (link, r.text[:500])
            phones, link = _listed(r.text)
            pages.append(phones)
        return pages


async def test_every_conversation_is_reached_once_by_the_older_links(tmp_path: Path) -> None:
    async with _panel(tmp_path, _seed) as (_web, port, made):
        everyone = await _walk(port, OPERATOR)
        acme = await _walk(port, ADMIN)
        rival = await _walk(port, OTHER_ADMIN)
    assert [len(p) for p in everyone] == [100, 100, 59]
    assert [p for page in everyone for p in page] == _newest_first(made["acme"] + made["rival"])
    # A company admin pages through their own account's only, and the operator's pages are the same
    # conversations in the same order.
    assert [len(p) for p in acme] == [100, 80]
    assert [p for page in acme for p in page] == _newest_first(made["acme"])
    assert [p for page in rival for p in page] == _newest_first(made["rival"]) and len(rival) == 1


async def test_a_phone_is_found_and_its_pages_keep_the_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three users wrote to one phone: two pages of two, the second still that phone's only."""

    def seed(store: Store) -> list[str]:
        made = _seed(store)
        acme = store.accounts.get_account("acme").id
        with store.db.transaction():
            for n, user in enumerate(("a@acme.example", "b@acme.example", "c@acme.example")):
                store.db.conn.execute(
                    "INSERT INTO conversations (phone, number, user_email, account_id, domain, text,"
                    " started_at, last_mt_at) VALUES ('+48609999999', '+48100200300', ?, ?,"
                    " 'sms.example.com', 'hi', ?, ?)",
                    (user, acme, T0, T0 + n),
                )
        return [phone for _, _, phone in made["acme"]]

    monkeypatch.setattr(services, "SHOWN", 2)
    async with _panel(tmp_path, seed) as (_web, port, _made):
        pages = await _walk(port, OPERATOR, "/conversations?phone=609+999+999")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            await login(c, ADMIN, PASSWORD)
            first = await c.get("/conversations?phone=609999999")
            wrong = await c.get("/conversations?before=1780000000.25_x")
            junk = await c.get("/conversations?phone=call+me")
    assert pages == [["+48609999999"] * 2, ["+48609999999"]]
    assert 'id="newest"' in first.text and 'value="609999999"' in first.text
    assert wrong.status_code == 400 and "is not a position in the conversations" in wrong.text
    assert junk.status_code == 400 and "is not a phone number" in junk.text


def _widths(driver: Any, base: str, pages: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """At 390 CSS px: the page's width, the window's, and the widest table's content and box."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(OPERATOR)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), OPERATOR))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    found = {}
    for page in pages:
        driver.get(base + page)
        wait.until(ec.presence_of_element_located((By.ID, "logout")))
        found[page] = driver.execute_script(
            "const t = Array.from(document.querySelectorAll('main table'));"
            " const rows = t.map(e => e.querySelector('tr').getBoundingClientRect().width);"
            " const root = document.documentElement;"
            " const right = Math.max(...t.map(e => e.getBoundingClientRect().right));"
            " return {page: root.scrollWidth, window: root.clientWidth, rows: Math.max(...rows), right};"
        )
    return found


async def test_lists_scroll_in_their_own_box_at_phone_width(tmp_path: Path) -> None:
    def seed(store: Store) -> None:
        _seed(store)
        for n in range(3):
            add_mail(store, "acme", ADMIN, f"+4860200000{n}", "a message")

    with chromium() as driver:
        async with _panel(tmp_path, seed) as (_web, port, _made):
            widths = await asyncio.to_thread(
                _widths, driver, f"http://127.0.0.1:{port}", ("/conversations", "/messages")
            )
    for page, w in widths.items():
        # The rows are wider than a phone (this is a test of something), and yet neither the page
        # nor any table's box goes past the window: the table scrolls, the page does not.
        assert w["rows"] > w["window"], (page, w)
        assert w["page"] <= w["window"] and w["right"] <= w["window"], (page, w)


def test_a_page_is_one_index_range_however_deep(tmp_path: Path) -> None:
    """The operator's and an account's pages are read in their index's order, never sorted whole: on a
    fresh store (no ANALYZE, as the daemon's) a deep page costs what the first does."""

    class Planned:
        """The connection, asked for the plan of the page's query instead of its rows."""

        def __init__(self, conn: Any) -> None:
            self.conn, self.steps = conn, ""

        def execute(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
            found = self.conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
            self.steps = " ".join(row[3] for row in found)
            return []

    store = Store.open(tmp_path / "plan.db")
    try:
        for scope in (None, 1):
            for before in (None, (T0, 5)):
                planned = Planned(store.db.conn)
                services.conversations_page(planned, scope, limit=services.SHOWN, before=before)  # type: ignore[arg-type]
                steps = planned.steps
                assert "TEMP B-TREE" not in steps and "USING INDEX conversations_" in steps, (scope, steps)
                assert (before is None) == ("last_mt_at<" not in steps), steps  # a range, not a scan
    finally:
        store.close()
