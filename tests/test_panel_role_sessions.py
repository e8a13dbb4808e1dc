"""A panel session ends for good when its login's role is taken away, and a 405 names every method.

The README promises that removing a user or its panel role ends their sessions, and that a role
given back does not revive the old cookie. The panel re-read the role at each request only: an
admin demoted and promoted again (in the panel, or with `smsgw user set` from another process on
the same database) before their next request kept a working cookie and CSRF token. These tests go
through the real panel server on 127.0.0.1 and run the CLI as the administrator does, a process of
its own on the same SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import httpx
import pytest

from gateway.store.db import Store
from gateway.web.app import WebContext
from gateway.web.security import SESSION_COOKIE
from gateway.web.server import WebServer
from tests.conftest import config_text, free_port
from tests.web_helpers import ADMIN, HOST, OPERATOR, PASSWORD, csrf_of, password_hash, web_context

ROOT = Path(__file__).resolve().parents[1]
SECOND = "eva@acme.example"  # a second company admin of acme: its admin changes her role


def seed(store: Store) -> None:
    acc = store.accounts
    acc.add_account("acme", networks=["127.0.0.0/8"], sender="+48100200300")
    for email, role in ((OPERATOR, "operator"), (ADMIN, "admin"), (SECOND, "admin")):
        acc.add_user(email, "acme", password_hash=password_hash())
        acc.set_user(email, role=role)


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[WebContext, str, Path]]:
    """The panel on 127.0.0.1 over the database a CLI config (also yielded) names."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    (tmp_path / "state").mkdir(mode=0o750)
    store = Store.open(tmp_path / "state" / "smsgw.db")
    seed(store)
    store.db.serve()
    web = web_context(tmp_path / "state", store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(web)
    port = await server.start()
    try:
        yield web, f"http://127.0.0.1:{port}", config
    finally:
        await server.stop()
        web.counts.close()
        store.close()


@asynccontextmanager
async def browser(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, headers={"Host": HOST}) as c:
        yield c


async def log_in(c: httpx.AsyncClient, email: str) -> str:
    """Logs `c` in through the login form; the CSRF token of its /users page."""
    page = await c.get("/login")
    r = await c.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    users = await c.get("/users")
    assert users.status_code == 200
    return csrf_of(users.text)


async def set_role(c: httpx.AsyncClient, csrf: str, email: str, role: str) -> None:
    r = await c.post(
        "/users",
        data={"csrf": csrf, "action": "role", "email": email, "role": role, "current_password": PASSWORD},
    )
    assert r.status_code == 303, r.text


def cli(config: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


async def assert_ended(web: WebContext, c: httpx.AsyncClient, csrf: str) -> None:
    """The old cookie opens no page, and its CSRF token changes nothing (SECOND's limits stay unset)."""
    r = await c.get("/users")
    assert r.status_code == 303 and r.headers["location"].startswith("/login"), r.status_code
    form = {"csrf": csrf, "action": "limits", "email": SECOND, "monthly_limit": "7", "daily_limit": ""}
    r = await c.post("/users", data=form)
    assert r.status_code in (303, 401), r.status_code
    user = web.store.accounts.find_user(SECOND)
    assert user is not None and user.monthly_limit is None


async def test_a_role_taken_away_and_given_back_in_the_panel_ends_the_old_session(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, base, _config), browser(base) as admin, browser(base) as eva:
        mine = await log_in(admin, ADMIN)
        hers = await log_in(eva, SECOND)
        token = eva.cookies[SESSION_COOKIE]
        await set_role(admin, mine, SECOND, "user")
        assert web.sessions.get(token) is None  # ended at once, not at her next request
        await set_role(admin, mine, SECOND, "admin")
        await assert_ended(web, eva, hers)
        assert (await admin.get("/users")).status_code == 200  # the admin who changed it stays in
        eva.cookies.clear()
        await log_in(eva, SECOND)  # a new login is the way back


async def test_a_role_taken_away_and_given_back_by_the_cli_ends_the_old_session(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, base, config), browser(base) as eva:
        hers = await log_in(eva, SECOND)
        cli(config, "user", "set", SECOND, "--role", "user")
        cli(config, "user", "set", SECOND, "--role", "admin")
        await assert_ended(web, eva, hers)


async def test_a_user_removed_and_added_again_by_the_cli_keeps_no_old_session(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, base, config), browser(base) as eva:
        hers = await log_in(eva, SECOND)
        cli(config, "user", "remove", SECOND)
        cli(config, "user", "add", SECOND, "--account", "acme")
        # The same password hash as before, as a restored row or a copied hash would have it.
        with closing(sqlite3.connect(web.store.db.path, timeout=10)) as conn, conn:
            conn.execute("UPDATE users SET password_hash = ? WHERE email = ?", (password_hash(), SECOND))
        cli(config, "user", "set", SECOND, "--role", "admin")
        await assert_ended(web, eva, hers)


async def test_other_changes_leave_the_session_alone(tmp_path: Path) -> None:
    # Limits, and a role set to what it was, take nothing away: the session goes on.
    async with served(tmp_path) as (_web, base, config), browser(base) as admin, browser(base) as eva:
        mine = await log_in(admin, ADMIN)
        await log_in(eva, SECOND)
        form = {"csrf": mine, "action": "limits", "email": SECOND, "monthly_limit": "9", "daily_limit": ""}
        assert (await admin.post("/users", data=form)).status_code == 303
        await set_role(admin, mine, SECOND, "admin")
        cli(config, "user", "set", SECOND, "--role", "admin", "--daily-limit", "3")
        assert (await eva.get("/users")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/users", "GET, HEAD, POST"),
        ("PUT", "/login", "GET, HEAD, POST"),
        ("DELETE", "/account", "GET, HEAD, POST"),
        ("PATCH", "/premium", "GET, HEAD, POST"),
        ("PUT", "/operator/accounts", "GET, HEAD, POST"),
        ("GET", "/logout", "POST"),
        ("PUT", "/messages/1/retry", "POST"),
    ],
)
async def test_a_405_allows_every_method_the_path_takes(
    tmp_path: Path, method: str, path: str, allow: str
) -> None:
    # The pages whose forms POST to them said "Allow: GET, HEAD": Starlette names the methods of the
    # first route of the path only, and each page's GET and POST are routes of their own.
    async with served(tmp_path) as (_web, base, _config), browser(base) as c:
        await log_in(c, OPERATOR)
        r = await c.request(method, path)
        assert r.status_code == 405
        assert r.headers["allow"] == allow
