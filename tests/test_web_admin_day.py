"""What a company admin and the operator do in the panel, through the real app on a real SQLite file:
account names in URLs, senders no SMSC takes, queue actions that did nothing, the time zone, premium
money of removed services. The CSV export, what is set on an account (limits, opt-outs, senders,
users, a refused form) and how the pages read (buttons, edited URLs, labels) have modules of their
own: test_web_admin_day_csv.py, _settings.py, _pages.py. The `web` fixture they use stays here."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from billing_reports import mtlate
from gateway.premium import handlers
from gateway.store.db import Store
from gateway.web.app import WebContext
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    PASSWORD,
    add_mail,
    as_user,
    csrf_of,
    panel_store,
    seeded_store,
    web_context,
)

PREMIUM = '[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "premium-ops@example.com"\n'
SETTINGS = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, PREMIUM)
    yield web
    web.counts.close()
    store.close()


def _action(page: str, form_id: str | None = None, action: str | None = None) -> str:
    """The `action` of a form on the page, as a browser would post to it."""
    if form_id is not None:
        m = re.search(rf'<form method="post" action="([^"]*)"[^>]*id="{form_id}"', page)
    else:
        m = re.search(
            rf'<form method="post" action="([^"]*)"[^>]*>(?:(?!</form>).)*value="{action}"', page, re.S
        )
    assert m, (form_id, action)
    return html.unescape(m.group(1))


def _error(page: str) -> str:
    m = re.search(r'id="error">([^<]*)<', page)
    return html.unescape(m.group(1)) if m else ""


# ---- 1: account names in URLs ------------------------------------------------------------------


async def test_operator_saves_and_edits_accounts_whose_names_hold_url_characters(web: WebContext) -> None:
    accounts = web.store.accounts

    def add() -> None:
        for name in ("A", "A&B", "Kowalski+Syn"):
            accounts.add_account(name)

    await web.store.write(add)
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/account", params={"account": "A&B"})).text
        assert "<h1>Account A&amp;B</h1>" in page
        data = {**SETTINGS, "csrf": csrf_of(page), "billing_to": "books@ab.example", "sender": "AandB"}
        r = await c.post(_action(page, "settings"), data=data, follow_redirects=True)
        assert r.status_code == 200 and "account A&amp;B updated" in r.text
        assert accounts.get_account("A&B").sender == "AandB"
        assert accounts.get_account("A").sender is None  # was saved into "A"
        assert accounts.billing_addresses(accounts.get_account("A").id) == []

        page = (await c.get("/users", params={"account": "Kowalski+Syn"})).text
        data = {"csrf": csrf_of(page), "action": "add", "account": "Kowalski+Syn", "email": "k@ks.example"}
        r = await c.post(_action(page, "add-user"), data=data, follow_redirects=True)
        assert r.status_code == 200, r.text[:300]  # was 404 after the user was added
        assert "Users of Kowalski+Syn" in r.text
        assert accounts.find_user("k@ks.example").account == "Kowalski+Syn"
        limits = _action(r.text, action="limits")
        assert limits == "/users?account=Kowalski%2BSyn"
        data = {"csrf": csrf_of(page), "action": "limits", "email": "k@ks.example", "monthly_limit": "7"}
        r = await c.post(limits, data=data, follow_redirects=True)
        assert r.status_code == 200 and "Users of Kowalski+Syn" in r.text
        assert accounts.find_user("k@ks.example").monthly_limit == 7


# ---- 2: a sender no SMSC can send from ---------------------------------------------------------


async def test_operator_add_account_refuses_a_sender_an_smsc_cannot_send(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        data = {"csrf": token, "action": "add", "name": "lodz", "sender": "Łódź Spółka Akcyjna"}
        r = await c.post("/operator/accounts", data=data)
        assert r.status_code == 400 and "GSM 03.38" in _error(r.text)
        # What was typed stays in the form (item 10).
        assert 'value="lodz"' in r.text and 'value="Łódź Spółka Akcyjna"' in r.text
        data["sender"] = "Lodz SA"
        assert (await c.post("/operator/accounts", data=data)).status_code == 303
        # The name follows the CLI's rule too: its billing file must be writable.
        data.update(name="Spółka " + "ż" * 70, sender="")
        r = await c.post("/operator/accounts", data=data)
        assert r.status_code == 400 and "holds at most 64" in _error(r.text)
    assert web.store.accounts.get_account("lodz").sender == "Lodz SA"


async def test_operator_add_account_takes_networks_split_by_spaces_as_networks(web: WebContext) -> None:
    # "192.0.2.0/24 198.51.100.0/24" was "not a network" (commas only, said nowhere); a network
    # with host bits set was stored as typed, hiding that all of 10.0.0.0/8 may send.
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        nets = "192.0.2.0/24 198.51.100.0/24,10.1.2.3/8"
        r = await c.post(
            "/operator/accounts",
            data={
                "csrf": token,
                "action": "add",
                "name": "nets",
                "networks": nets,
                "current_password": PASSWORD,
            },
        )
        assert r.status_code == 303, _error(r.text)
    assert web.store.accounts.get_account("nets").networks == (
        "10.0.0.0/8",
        "192.0.2.0/24",
        "198.51.100.0/24",
    )


async def test_operator_add_account_refuses_another_accounts_network_as_the_cli_does(web: WebContext) -> None:
    # `smsgw account add gamma --relay-network X` refuses a network that is or holds another account's;
    # the panel stored it (303 "added"), and acme's mail server then sent as gamma's users.
    (acme_net,) = web.store.accounts.get_account("acme").networks
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        for nets in (acme_net, "0.0.0.0/1 " + acme_net):
            data = {"csrf": token, "action": "add", "name": "gamma", "networks": nets}
            r = await c.post("/operator/accounts", data=data)
            assert r.status_code == 400, r.status_code
            assert f"account acme's relay network {acme_net}" in _error(r.text), _error(r.text)
        assert "gamma" not in [a.name for a in web.store.accounts.list_accounts()]


# ---- 3: queue actions ---------------------------------------------------------------------------


def _set_state(web: WebContext, mid: int, state: str) -> None:
    conn = web.store.db.conn
    conn.execute("UPDATE parts SET state = ? WHERE message_id = ?", (state, mid))
    conn.execute("UPDATE messages SET state = ? WHERE id = ?", (state, mid))


async def test_retry_of_a_delivered_message_changes_nothing_and_says_so(web: WebContext) -> None:
    mine = web.store.mine  # type: ignore[attr-defined]
    await web.store.write(lambda: _set_state(web, mine, "delivered"))
    async with as_user(web, OPERATOR) as c:
        page = (await c.get(f"/messages/{mine}")).text
        for action in ("retry", "hold", "cancel"):
            assert f"/messages/{mine}/{action}" not in page, action  # nothing for them to take
        r = await c.post(f"/messages/{mine}/retry", data={"csrf": csrf_of(page)})
        assert r.status_code == 409 and _error(r.text).startswith("nothing to retry")
        assert web.store.admin.message_info(mine)["state"] == "delivered"  # was 'queued' for ever
        assert all(e["action"] != "message.retry" for e in web.repo.audit_log(None))

        await web.store.write(lambda: _set_state(web, mine, "failed"))
        page = (await c.get(f"/messages/{mine}")).text
        assert f"/messages/{mine}/retry" in page and f"/messages/{mine}/hold" not in page
        r = await c.post(f"/messages/{mine}/retry", data={"csrf": csrf_of(page)})
        assert r.status_code == 303
        page = (await c.get(r.headers["location"])).text
        assert "retry asked at " in page and ": 1 part(s) queued again then" in page
        assert web.store.admin.message_info(mine)["state"] == "queued"
        assert f"/messages/{mine}/hold" in page and f"/messages/{mine}/retry" not in page


def test_store_retry_leaves_a_message_with_nothing_to_send_alone(tmp_path: Path) -> None:
    store = seeded_store(tmp_path)
    try:
        mid = add_mail(store, "acme", ADMIN, "+48601000001", "sent")
        with store.db.transaction():
            store.db.conn.execute("UPDATE parts SET state = 'delivered' WHERE message_id = ?", (mid,))
            store.db.conn.execute(
                "UPDATE messages SET state = 'delivered', finished_at = 1 WHERE id = ?", (mid,)
            )
        assert store.admin.retry_message(mid, before_reset=mtlate.retried) == 0
        info = store.admin.message_info(mid)
        assert info["state"] == "delivered"
    finally:
        store.close()


# ---- 4: the installation's time zone ------------------------------------------------------------

# 23:30 UTC on 30 November is 00:30 on 1 December in Warsaw: the limits count it in December.
NOW = datetime(2026, 11, 30, 23, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def utc_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's zone is UTC, as on most servers: the panel must not use it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_dates_are_the_installations_zone_not_the_hosts(tmp_path: Path, utc_process: None) -> None:
    seeded_store(tmp_path).close()
    clock = [NOW - 3600]  # 23:30 on 30 November in Warsaw
    store = Store.open(tmp_path / "panel.db", clock=lambda: clock[0])
    add_mail(store, "acme", ADMIN, "+48601000001", "late on 30 November")
    clock[0] = NOW
    mid = add_mail(store, "acme", ADMIN, "+48601000002", "just after midnight")
    acme = store.accounts.get_account("acme")
    store.accounts.add_usage([f"account:{acme.id}"], ["2026-12"], 1)  # as the limits count it
    store.db.serve()
    web = web_context(tmp_path, store)
    web.sessions.clock = store.clock
    try:
        async with as_user(web, ADMIN) as c:
            page = (await c.get("/")).text
            assert "Use in 2026-12 against limits" in page
            assert re.search(r'<ul class="states" id="today">\s*<li class="state-queued"><b>1</b>', page)
            page = (await c.get("/messages", params={"from": "2026-12-01", "to": "2026-12-01"})).text
            assert f">{mid}</a>" in page and ">1</a>" not in page
            assert "2026-12-01 00:30:00" in page
            assert "2026-12-01 00:30:00" in (await c.get(f"/messages/{mid}")).text
            assert f"{mid},2026-12-01T00:30:00+01:00,acme" in (await c.get("/messages.csv")).text
    finally:
        web.counts.close()
        store.close()


# ---- 5: premium money of removed services -------------------------------------------------------


async def test_premium_money_of_a_removed_service_stays_on_the_page(web: WebContext) -> None:
    repo = handlers.repo(web.store)
    kp100 = repo.active_service("KP100")
    await web.store.write(lambda: repo.update_service(kp100.id, removed_at=web.store.clock()))
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/premium")).text
        assert "<td>KP100 (removed)</td><td>7355</td><td>1</td><td>2</td><td>7.38</td><td>1.50</td>" in page
        assert "3.69" not in page
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/premium")).text
        assert "KP100 (removed)" in page and "<td>KP777</td>" in page and "3.69" in page
