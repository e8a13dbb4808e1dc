"""What an admin may type into account names, suspension reasons and end markers, in the CLI, the panel
and the config alike: one line of plain text of a bounded length. A reason of 3,400 characters went
into every SMTP refusal, a marker `END\\nstate: active` forged lines of `account show`, and a
right-to-left override in a name reversed its row of the operator's accounts page. A second
suspension said "suspended" and dropped the reason it was given.

The CLI runs as `python -m gateway.cli` on a real SQLite file, the panel through its routes (and once
in a real Chromium against the real server), the config through `check-config`.
"""

from __future__ import annotations

import asyncio
import html
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE
from gateway.store.db import Store
from gateway.web.app import WebContext
from gateway.web.server import WebServer
from tests.test_cli_errors import run, write_config
from tests.test_config_checks import config_file, smsgw
from tests.test_web_browser import chromium
from tests.web_helpers import OPERATOR, PASSWORD, as_user, csrf_of, panel_store, web_context
from tests.web_helpers import web as web  # the fixture

LONG_REASON = "Zaległa płatność " * 200  # 3,400 characters
RTL_NAME = "RTL\u202eevil"
FORGING_MARKER = "END\nstate: active\nbilling-to: none"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A config (`config.toml` beside the state directory) and the database of account acme, made by
    the CLI itself."""
    (tmp_path / "state").mkdir()
    assert run(write_config(tmp_path), "account", "add", "acme").returncode == 0
    return tmp_path / "state" / "smsgw.db"


@pytest.fixture
def config(db: Path) -> Path:
    return db.parent.parent / "config.toml"


def suspension(db: Path, name: str = "acme") -> tuple[Any, Any]:
    """(suspended_at, suspended_reason) as stored."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT suspended_at, suspended_reason FROM accounts WHERE name = ?", (name,)
        ).fetchone()


def stored_marker(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT end_marker FROM accounts WHERE name = 'acme'").fetchone()[0]


def account_names(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM accounts ORDER BY name")]


def store_as_typed_before(db: Path, *, marker: str | None = None, reason: str | None = None) -> None:
    """A value the CLI took before it refused line breaks: still in databases, and printed."""
    store = Store.open(db)
    try:
        if marker is not None:
            store.accounts.update_account("acme", end_marker=marker)
        if reason is not None:
            store.policy.suspend_account(store.accounts.get_account("acme").id, reason)
    finally:
        store.close()


def page_error(page: str) -> str:
    start = page.index('id="error">') + len('id="error">')
    return html.unescape(page[start : page.index("<", start)])


# ---- 1. suspension reasons: one line of at most 200 characters -----------------------------------


def test_the_cli_refuses_a_reason_longer_than_200_characters_naming_the_limit(config: Path, db: Path) -> None:
    res = run(config, "account", "suspend", "acme", "--reason", LONG_REASON)
    assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
    assert "--reason" in res.stderr and "at most 200" in res.stderr and "3399 characters" in res.stderr
    assert suspension(db) == (None, None)  # refused, not cut: nothing suspended
    res = run(config, "account", "suspend", "acme", "--reason", "x" * 200)
    assert res.returncode == 0, res.stderr
    assert suspension(db)[1] == "x" * 200


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        ("Zaległa faktura\r\n250 2.1.5 forged", "a control character (a carriage return)"),
        ("unpaid\u2028since May", "U+2028 (a line or paragraph separator)"),
        ("\u202eunpaid invoice", "U+202E (a bidi control"),
        ("unpaid \u2067invoice", "U+2067 (a bidi control"),
    ],
)
def test_the_cli_refuses_a_reason_that_breaks_or_reorders_its_line(
    config: Path, db: Path, reason: str, named: str
) -> None:
    res = run(config, "account", "suspend", "acme", "--reason", reason)
    assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
    assert named in res.stderr and "one plain line" in res.stderr, res.stderr
    assert suspension(db) == (None, None)


async def test_the_panel_refuses_a_long_or_reordering_reason(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        for reason, named in (("Zaległa płatność " * 20, "at most 200"), ("\u202eunpaid", "U+202E")):
            data = {"csrf": token, "action": "suspend", "name": "acme", "confirm": "yes", "reason": reason}
            r = await c.post("/operator/accounts", data=data)
            assert r.status_code == 400 and named in page_error(r.text), r.text[-600:]
        assert web.store.accounts.get_account("acme").suspended_at is None
        data = {"csrf": token, "action": "suspend", "name": "acme", "confirm": "yes", "reason": "y" * 200}
        r = await c.post("/operator/accounts", data=data)
        assert r.status_code == 303 and web.store.accounts.get_account("acme").suspended_reason == "y" * 200


# ---- 2. end markers: one line of at most 64 characters, and `account show` forges no line -------


@pytest.mark.parametrize(
    ("marker", "named"),
    [
        (FORGING_MARKER, "a control character (a line break)"),
        ("EN\u2029D", "U+2029 (a line or paragraph separator)"),
        ("\u202eDNE", "U+202E (a bidi control"),
        ("x" * 65, "65 characters long; an end marker holds at most 64"),
    ],
)
def test_the_cli_refuses_an_end_marker_that_is_not_one_short_line(
    config: Path, db: Path, marker: str, named: str
) -> None:
    res = run(config, "account", "set", "acme", "--end-marker", marker)
    assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
    assert "--end-marker" in res.stderr and named in res.stderr, res.stderr
    assert stored_marker(db) is None
    assert run(config, "account", "set", "acme", "--end-marker", "x" * 64).returncode == 0
    assert stored_marker(db) == "x" * 64


def test_account_show_and_list_print_each_stored_value_on_its_own_line(config: Path, db: Path) -> None:
    store_as_typed_before(db, marker=FORGING_MARKER, reason="unpaid\nstate: active\u2028billing-to: none")
    lines = run(config, "account", "show", "acme").stdout.splitlines()
    assert [line.split(":")[0] for line in lines].count("state") == 1, lines
    assert [line.split(":")[0] for line in lines].count("billing-to") == 1, lines
    assert "end-marker: END\\x0astate: active\\x0abilling-to: none" in lines
    listed = run(config, "account", "list").stdout.splitlines()
    assert len(listed) == 1 and listed[0].endswith(
        "SUSPENDED (unpaid\\x0astate: active\\u2028billing-to: none)"
    ), listed


@pytest.mark.parametrize(
    ("marker", "named"),
    [('"A\\nB"', "holds a control character (a line break)"), (f'"{"=" * 65}"', "holds at most 64")],
)
def test_check_config_refuses_an_end_marker_that_is_not_one_short_line(
    tmp_path: Path, marker: str, named: str
) -> None:
    path = config_file(
        tmp_path, ("retry_base_seconds = 0.2", f"retry_base_seconds = 0.2\nend_marker = {marker}")
    )
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == EXIT_CONFIG, res.stdout + res.stderr
    assert "[gateway] end_marker: end marker" in res.stderr and named in res.stderr, res.stderr


async def test_the_panel_refuses_an_end_marker_that_is_not_one_short_line(web: WebContext) -> None:
    settings = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/account", params={"account": "acme"})).text)
        for marker, named in ((FORGING_MARKER, "a line break"), ("-" * 65, "at most 64")):
            data = {**settings, "csrf": token, "end_marker": marker}
            r = await c.post("/account", params={"account": "acme"}, data=data)
            assert r.status_code == 400 and named in page_error(r.text), r.text[-600:]
        assert web.store.accounts.get_account("acme").end_marker is None
        r = await c.post(
            "/account", params={"account": "acme"}, data={**settings, "csrf": token, "end_marker": "--"}
        )
        assert r.status_code == 303 and web.store.accounts.get_account("acme").end_marker == "--"


# ---- 3. bidi controls in account names; names and reasons isolated in the panel's lists ----------


def test_the_cli_refuses_an_account_name_holding_a_bidi_control(config: Path, db: Path) -> None:
    for name in (RTL_NAME, "acme \u2066corp", "acme\u2028corp"):
        res = run(config, "account", "add", name)
        assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
        assert "give a plain name" in res.stderr, res.stderr
    assert account_names(db) == ["acme"]


def test_check_config_refuses_a_seeded_account_name_holding_a_bidi_control(tmp_path: Path) -> None:
    path = config_file(tmp_path, ('name = "acme"', 'name = "RTL\\u202Eevil"'))
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == EXIT_CONFIG and "U+202E (a bidi control" in res.stderr, res.stderr


async def test_the_panel_refuses_a_new_account_name_holding_a_bidi_control(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        r = await c.post("/operator/accounts", data={"csrf": token, "action": "add", "name": RTL_NAME})
        assert r.status_code == 400 and "U+202E (a bidi control" in page_error(r.text)
    assert [a.name for a in web.store.accounts.list_accounts()] == ["acme", "rival"]


async def test_names_and_reasons_stored_before_are_isolated_in_the_lists(web: WebContext) -> None:
    def earlier() -> None:
        web.store.accounts.add_account(RTL_NAME)
        web.store.policy.suspend_account(web.store.accounts.get_account(RTL_NAME).id, "\u202eunpaid")

    await web.store.write(earlier)
    async with as_user(web, OPERATOR) as c:
        for path in ("/operator/accounts", "/"):
            page = (await c.get(path)).text
            assert f"<bdi>{RTL_NAME}</bdi>" in page and "suspended: <bdi>\u202eunpaid</bdi>" in page, path
        assert f"<bdi>{RTL_NAME}</bdi>" in (await c.get("/users", params={"account": "acme"})).text


def _link_order(driver: Any, base: str) -> tuple[float, float]:
    """x of the `settings` and `users` links in the RTL account's row, as Chromium lays them out."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    driver.get(base + "/login")
    wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys(OPERATOR)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.presence_of_element_located((By.ID, "whoami")))
    driver.get(base + "/operator/accounts")
    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#accounts tr[data-account^="RTL"]')))
    settings = row.find_element(By.CSS_SELECTOR, "a.settings").rect
    users = row.find_element(By.CSS_SELECTOR, "a.users").rect
    return settings["x"], users["x"]


async def test_an_rtl_override_in_a_name_stays_in_the_name_in_chromium(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    panel = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    await store.write(lambda: store.accounts.add_account(RTL_NAME))  # as the panel took it before
    server = WebServer(panel)
    port = await server.start()
    try:
        with chromium() as driver:
            settings_x, users_x = await asyncio.to_thread(_link_order, driver, f"http://127.0.0.1:{port}")
        # Without <bdi> the override ran on to the end of the cell: "users" showed left of "settings".
        assert settings_x < users_x, (settings_x, users_x)
    finally:
        await server.stop()
        panel.counts.close()
        store.close()


# ---- 4. suspending a suspended account: the reason changes, or is kept, and it is said -----------


def test_the_cli_says_a_second_suspension_changes_or_keeps_the_reason(config: Path, db: Path) -> None:
    first = run(config, "account", "suspend", "acme", "--reason", "too many failures")
    assert first.returncode == 0 and "account acme suspended; 0 waiting message(s) held" in first.stdout
    since = suspension(db)[0]

    again = run(config, "account", "suspend", "acme", "--reason", "Zaległa płatność: call 22 123 45 67")
    assert again.returncode == 0, again.stderr
    assert "account acme is already suspended since" in again.stdout, again.stdout
    assert "reason changed from 'too many failures' to 'Zaległa płatność: call 22 123 45 67'" in again.stdout
    assert suspension(db) == (since, "Zaległa płatność: call 22 123 45 67")  # same suspension, new words

    kept = run(config, "account", "suspend", "acme")  # no --reason: the default must not overwrite it
    assert kept.returncode == 0 and "reason kept: Zaległa płatność: call 22 123 45 67" in kept.stdout
    assert suspension(db) == (since, "Zaległa płatność: call 22 123 45 67")


async def test_the_panel_says_a_second_suspension_changes_the_reason(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        data = {"csrf": token, "action": "suspend", "name": "acme", "confirm": "yes", "reason": "spam"}
        r = await c.post("/operator/accounts", data=data, follow_redirects=True)
        assert "account acme suspended; 1 waiting message(s) held" in r.text
        since = web.store.accounts.get_account("acme").suspended_at
        # Two operators on one page, or a page left open: the form still offered Suspend.
        r = await c.post(
            "/operator/accounts", data={**data, "reason": "unpaid invoice 12/2026"}, follow_redirects=True
        )
        assert r.status_code == 200
        assert "reason changed from &#39;spam&#39; to &#39;unpaid invoice 12/2026&#39;" in r.text, r.text[
            -800:
        ]
    acme = web.store.accounts.get_account("acme")
    assert (acme.suspended_at, acme.suspended_reason) == (since, "unpaid invoice 12/2026")
    assert web.store.admin.message_info(web.store.mine)["state"] == "hold"  # type: ignore[attr-defined]
    assert [e["detail"] for e in web.repo.audit_log(acme.id, 5)] == ["unpaid invoice 12/2026", "spam"]
