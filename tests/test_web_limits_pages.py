"""What the panel's pages cost the daemon, checked on a fresh store as installations have it (the store
never runs ANALYZE, so SQLite plans without statistics): an account's opt-outs found by the
recipient index and listed a page at a time off the loop, its searches and dashboard on the
narrowest index, a search by user and state driven by the user's mails. Split from
test_web_limits.py by subject (it was over 400 lines); `statements`, `trace_reader` and `plan`
stay there, as other modules import them."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.web.app import WebContext
from tests.test_web_limits import plan, statements, trace_reader
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    OTHER_ADMIN,
    add_mail,
    as_user,
    csrf_of,
)
from tests.web_helpers import web as web  # the fixture


async def page_plans(
    web: WebContext, email: str, requests: list[tuple[str, str, dict[str, str]]]
) -> list[str]:
    """Each statement about messages that the pages ran, wherever they ran it, with its plan."""
    with statements(web) as seen:
        await trace_reader(web, True, seen)
        try:
            async with as_user(web, email) as c:
                for method, path, data in requests:
                    if method == "GET":
                        assert (await c.get(path)).status_code == 200, path
                    else:
                        data = {**data, "csrf": csrf_of((await c.get("/account")).text)}
                        await c.post(path, data=data)
        finally:
            await trace_reader(web, False, seen)
    return [f"{sql}\n  -> {plan(web, sql)}" for sql in seen if "FROM messages" in sql and "SELECT" in sql]


def test_the_store_has_no_statistics() -> None:
    """What the plan tests below assume: a store as the daemon makes it (it never runs ANALYZE)."""
    import tempfile

    from gateway.store.db import Store

    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "fresh.db")
        try:
            found = store.db.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")
            assert found.fetchall() == []
        finally:
            store.close()


async def test_account_opt_outs_are_found_by_the_recipient_index(web: WebContext) -> None:
    # Each opt-out on a company admin's page looked for the account's SMS to its number through
    # messages_billing (account_id, ...): every message of the account, once per opt-out (11 s at
    # 100k messages and 3,000 opt-outs, the whole daemon stopped). So did the check before an add.
    store = web.store
    await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601555666", "hello"))
    await store.write(lambda: store.policy.add_optout("+48601555666", word="STOP", source="mo"))
    plans = await page_plans(
        web,
        ADMIN,
        [("GET", "/account", {}), ("POST", "/optouts", {"action": "add", "number": "+48601555667"})],
    )
    optouts = [p for p in plans if "optouts" in p]
    adds = [p for p in plans if "optouts" not in p and "recipient = '+48601555667'" in p]
    assert optouts and adds, plans
    for p in optouts + adds:
        assert "USING INDEX messages_recipient_id (recipient=?)" in p, p
        assert "messages_billing" not in p and "messages_account" not in p, p


async def test_an_accounts_searches_and_dashboard_use_the_narrowest_index(web: WebContext) -> None:
    # A company admin's dashboard (held and expired) and searches by number or user walked the
    # account's index, filtering every message the account had; the operator's took the narrow one.
    requests = [
        ("GET", "/", {}),
        ("GET", "/messages?number=%2B48601000001", {}),
        ("GET", "/messages?user=nobody%40acme.example", {}),
        ("GET", "/messages?state=failed", {}),
    ]
    plans = await page_plans(web, ADMIN, requests)
    expected = {
        "m.state = 'hold'": "messages_state (state=?)",
        "m.state = 'expired'": "messages_state (state=?)",
        "m.state = 'failed'": "messages_state (state=?)",
        "m.recipient = '+48601000001'": "messages_recipient_id (recipient=?)",
        "mail_from = 'nobody@acme.example'": "emails_sender (mail_from=?)",
    }
    for clause, index in expected.items():
        [found] = [p for p in plans if clause in p]
        assert index in found, found
        assert "account_id = " in found.split("->")[0], found  # still the account's only
    # A search by nothing narrower than the account: the account's own index, newest first.
    [whole] = await page_plans(web, ADMIN, [("GET", "/messages", {})])
    assert "messages_account (account_id=?)" in whole, whole


async def test_a_search_by_user_and_state_is_driven_by_the_users_mails(web: WebContext) -> None:
    # Given a state too, SQLite drove the search by messages_state and tried each message's sender:
    # for a user with no such message, every message ever delivered (1-3 s on a year of traffic).
    for email in (OPERATOR, ADMIN):
        plans = await page_plans(
            web, email, [("GET", "/messages?user=nobody%40acme.example&state=delivered", {})]
        )
        [found] = [p for p in plans if "mail_from = 'nobody@acme.example'" in p]
        assert "emails_sender (mail_from=?)" in found, found
        assert "messages_state" not in found.split("->")[1], found
        assert "m.state = 'delivered'" in found.split("->")[0], found  # still only that state


async def test_the_account_page_lists_opt_outs_a_page_at_a_time_off_the_loop(web: WebContext) -> None:
    # The operator's page listed all 3,000 opt-outs (1.5 MB of HTML), read on the loop.
    store = web.store
    numbers = [f"+48601{n:06d}" for n in range(250)]

    def seed() -> None:
        for n in numbers:
            store.policy.add_optout(n, word="STOP", source="mo")

    await store.write(seed)
    async with as_user(web, OPERATOR) as c:
        shown: list[str] = []
        path = "/account"
        with statements(web) as on_loop:
            while path:
                page = (await c.get(path)).text
                table = re.search(r'<table id="optouts">.*?</table>', page, re.S)
                assert table is not None
                rows = re.findall(r"<tr><td>(\+\d+)</td>", table.group(0))
                assert len(rows) <= 100
                shown += rows
                older = re.search(r'href="([^"]*)" id="optouts-older"', page)
                path = older.group(1).replace("&amp;", "&") if older else ""
        assert not [sql for sql in on_loop if "FROM optouts" in sql], on_loop
        # The newest first, each once, the one listed before (rival's customer) among them.
        assert shown == [*sorted(numbers, reverse=True), "+48602000002"]
        found = (await c.get("/account", params={"optout": "601 000 123"})).text
        table = re.search(r'<table id="optouts">.*?</table>', found, re.S)
        assert table and re.findall(r"<tr><td>(\+\d+)</td>", table.group(0)) == ["+48601000123"]
        r = await c.get("/account", params={"optouts_before": "x"})
        assert r.status_code == 400 and "is not a position in the opt-out list" in r.text
    async with as_user(web, OTHER_ADMIN) as c:  # an admin's pages hold their account's only
        page = (await c.get("/account")).text
        assert "+48601000123" not in page and "+48602000002" in page
