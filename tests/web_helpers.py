"""Shared by the panel's tests: a store with two accounts and their admins, and logging in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from acl.lockout import AuthGuard
from acl.passwords import hash_password
from gateway.config import parse_config
from gateway.store.db import Store
from gateway.web.app import WebContext, build_app

PASSWORD = "correct horse 1"
OPERATOR, ADMIN, OTHER_ADMIN, PLAIN = (
    "op@gw.example",
    "boss@acme.example",
    "boss@rival.example",
    "anna@acme.example",
)

_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:  # one scrypt for the whole session: the tests are about access, not hashing
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def seeded_store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "panel.db")
    acc = store.accounts
    acc.add_account("acme", networks=["127.0.0.0/8"], sender="+48100200300")
    acc.add_account("rival")
    for email, account, role in (
        (OPERATOR, "acme", "operator"),
        (ADMIN, "acme", "admin"),
        (OTHER_ADMIN, "rival", "admin"),
        (PLAIN, "acme", "user"),
    ):
        acc.add_user(email, account, password_hash=password_hash())
        acc.set_user(email, role=role)
    acc.add_user("carl@rival.example", "rival")
    return store


def web_context(tmp_path: Path, store: Store, extra: str = "") -> WebContext:
    cfg = parse_config(
        f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "{tmp_path}"\n[web]\nenabled = true\n{extra}',
        source="test",
        base_dir=tmp_path,
        links_required=False,
    )
    return WebContext(cfg, store, AuthGuard(3, 300), links=lambda: {"main": {"state": "active", "rate": 0.0}})


def client(web: WebContext) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(web), client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://panel.test")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def login(c: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    page = await c.get("/login")
    return await c.post("/login", data={"email": email, "password": password, "csrf": csrf_of(page.text)})


@asynccontextmanager
async def as_user(web: WebContext, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client(web) as c:
        r = await login(c, email)
        assert r.status_code == 303, r.text
        yield c
