"""Shared by the panel's tests: a store with two accounts and their admins, and logging in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from acl.lockout import AuthGuard
from acl.passwords import hash_password
from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.config import parse_config
from gateway.conversations.repo import ConversationsRepo
from gateway.premium.repo import PremiumRepo
from gateway.store.db import Store
from gateway.web.app import WebContext, build_app
from tests.conftest import Running, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, chromium

PASSWORD = "correct horse 1"
HOST = "panel.test"  # the panel's name in the tests' requests, one of its `[web] hostnames`
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
        f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "{tmp_path}"\n[web]\nenabled = true\n'
        f'hostnames = ["{HOST}", "panel"]\n{extra}',
        source="test",
        base_dir=tmp_path,
        links_required=False,
    )
    return WebContext(cfg, store, AuthGuard(3, 300), links=_one_link_up)


def _one_link_up(window: str | None = "panel") -> dict[str, dict[str, Any]]:
    """`LinkView`'s snapshot, as the daemon's web reads it (`gateway.linkstatus.LinksReader`)."""
    return {"main": {"state": "active", "rate": 0.0}}


def client(web: WebContext) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(web), client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}")


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


# What an acme admin must never see: the rival account's people, numbers, texts and services.
RIVAL_LEAKS = ("rival", OTHER_ADMIN, "carl@rival.example", "+48602000002", "rival secret text", "KP777")


def seed_replies_and_premium(store: Store) -> None:
    """A conversation and a premium service (with one premium SMS, money in grosze) per account."""
    conversations = ConversationsRepo(store.db, store.clock)
    premium = PremiumRepo(store.db, store.clock)
    for email, account, phone, password, price in (
        (ADMIN, "acme", "+48601000001", "KP100", 738),
        (OTHER_ADMIN, "rival", "+48602000002", "KP777", 369),
    ):
        acc = store.accounts.get_account(account)
        conversations.record_mt(
            phone=phone,
            number="+48100200300",
            user_email=email,
            account_id=acc.id,
            domain="sms.example.com",
            header_message_id=None,
            subject=f"{account} subject",
            text="hello",
        )
        service = premium.add_service(password, acc.id, email, [], [email])
        with store.db.transaction():
            store.db.conn.execute(
                "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts,"
                " price, commission, text, state, received_at) VALUES (?, '7355', ?, ?, ?, ?, 2, ?, 150, 'x',"
                " 'mailed', ?)",
                (service, phone, service, acc.id, password, price, store.clock()),
            )


def bill_this_month(store: Store, tmp_path: Path) -> Month:
    """This month's billing files, written by billing_reports itself under the state directory."""
    tz = ZoneInfo("Europe/Warsaw")
    month = Month.containing(store.clock(), tz)
    write_month(store.db.path, tmp_path, month, tz)
    return month


def add_mail(store: Store, account: str, sender: str, number: str, text: str) -> int:
    """A message row as acceptance writes it (the real path is covered by the browser test)."""
    conn = store.db.conn
    acc = store.accounts.get_account(account)
    with store.db.transaction():
        email_id = conn.execute(
            "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?, ?, ?, ?)",
            (acc.id, sender, text, store.clock()),
        ).lastrowid
        message_id = conn.execute(
            "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at) VALUES (?, ?, ?, '+48100200300', ?, 0, 1, 'queued', ?, ?)",
            (email_id, acc.id, number, text, store.clock(), store.clock() + 3600),
        ).lastrowid
        conn.execute(
            "INSERT INTO parts (message_id, account_id, seq, state, next_attempt_at, expires_at, destination,"
            " source, data_coding, payload, udh, text)"
            " VALUES (?, ?, 1, 'queued', ?, ?, ?, '+48100200300', 0, x'', x'', ?)",
            (
                message_id,
                acc.id,
                store.clock(),
                store.clock() + 3600,
                number,
                text,
            ),  # due now, as acceptance makes it
        )
        return message_id


def panel_store(tmp_path: Path) -> Store:
    """The panel tests' store: a message, a conversation, a premium service and this month's billing
    files for each of acme and rival; every write from here on goes through write(), as in the daemon."""
    store = seeded_store(tmp_path)
    store.mine = add_mail(store, "acme", ADMIN, "+48601000001", "acme secret text")  # type: ignore[attr-defined]
    store.theirs = add_mail(store, "rival", OTHER_ADMIN, "+48602000002", "rival secret text")  # type: ignore[attr-defined]
    store.policy.add_optout("+48602000002", word="STOP", source="mo")
    seed_replies_and_premium(store)
    store.month = bill_this_month(store, tmp_path)  # type: ignore[attr-defined]
    store.db.serve()
    return store


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    """The panel on the seeded store of acme and rival (`panel_store`), for route tests."""
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()
    store.close()


@asynccontextmanager
async def admin_in_chromium(
    tmp_path: Path, email: str, password: str
) -> AsyncIterator[tuple[Any, str, Running]]:
    """A real headless Chromium and the daemon with `email` an admin of acme whose password is
    `password`, for the browser tests that log a company admin in: the driver, the panel's address and
    the daemon."""
    with chromium() as driver:
        async with (
            HappySMSC() as smsc,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
        ):
            digest = hash_password(password)

            def admin() -> None:
                gw.store.accounts.add_user(email, "acme", password_hash=digest)
                gw.store.accounts.set_user(email, role="admin")

            await gw.store.write(admin)
            yield driver, f"http://127.0.0.1:{gw.daemon.web.port}", gw
