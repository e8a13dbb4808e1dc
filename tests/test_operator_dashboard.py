"""The operator's dashboard: a line per account, read off the loop; each account's users on its own page.

It listed every user of every account, each with a usage query of its own on the loop: at 6,000 users
671 KB of HTML, 1.4-2.2 s a load and half a second of the event loop stopped for each.
"""

from __future__ import annotations

import re
from datetime import datetime

from acl.limits import period_keys
from gateway.web.app import WebContext
from tests.test_web_limits import statements, trace_reader
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, PLAIN, RIVAL_LEAKS, as_user
from tests.web_helpers import web as web  # the fixture

STAFF = [f"staff{i}@acme.example" for i in range(40)]


async def seed_use(web: WebContext) -> None:
    """40 more acme users; this month acme used 17 parts (anna 9), rival 5 of its limit of 5."""
    accounts = web.store.accounts
    month = period_keys(datetime.fromtimestamp(web.store.clock(), web.tz))["monthly"]

    def seed() -> None:
        for email in STAFF:
            accounts.add_user(email, "acme")
        acme, rival = accounts.get_account("acme"), accounts.get_account("rival")
        accounts.update_account("rival", monthly_limit=5)
        accounts.add_usage([f"account:{acme.id}"], [month], 17)
        accounts.add_usage([f"user:{accounts.find_user(PLAIN).id}"], [month], 9)  # type: ignore[union-attr]
        accounts.add_usage([f"account:{rival.id}"], [month], 5)

    await web.store.write(seed)


def row(page: str, account: str) -> str:
    found = re.search(rf'<tr data-account="{account}">.*?</tr>', page, re.S)
    assert found, f"no line for {account}"
    return found.group(0)


async def test_the_operators_dashboard_has_a_line_per_account_read_off_the_loop(web: WebContext) -> None:
    await seed_use(web)
    on_reader: list[str] = []
    async with as_user(web, OPERATOR) as c:
        with statements(web) as on_loop:
            await trace_reader(web, True, on_reader)
            try:
                r = await c.get("/")
            finally:
                await trace_reader(web, False, on_reader)
    assert r.status_code == 200
    page = r.text
    acme, rival = row(page, "acme"), row(page, "rival")
    assert '<a href="/?account=acme">' in acme and "<td>43</td>" in acme and "17 / no limit" in acme
    assert "<td>2</td>" in rival and "5 / 5" in rival and 'class="over"' in rival
    # No user's line: each account's users are on its own page.
    for email in (ADMIN, PLAIN, OTHER_ADMIN, "carl@rival.example", *STAFF):
        assert email not in page
    # The figures are one read on the reader's thread, none on the loop.
    assert not [sql for sql in on_loop if re.search(r"\b(usage|users)\b", sql)], on_loop
    [totals] = [sql for sql in on_reader if re.search(r"\busage\b", sql)]
    assert "GROUP BY" in totals


async def test_each_account_has_its_users_on_its_own_page(web: WebContext) -> None:
    await seed_use(web)
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/", params={"account": "acme"})).text
        assert f"<tr><th>{PLAIN}</th>" in page and "9 / no limit" in page
        assert all(f"<tr><th>{email}</th>" in page for email in (ADMIN, *STAFF))
        assert "17 / no limit" in page and '<a href="/">All accounts</a>' in page
        assert OTHER_ADMIN not in page and "carl@rival.example" not in page
        assert 'data-account="' not in page  # not the overview
        assert (await c.get("/", params={"account": "nope"})).status_code == 404
    # A company admin's dashboard is their account's page; naming another account changes nothing.
    async with as_user(web, ADMIN) as c:
        for params in ({}, {"account": "rival"}):
            page = (await c.get("/", params=params)).text
            assert f"<tr><th>{PLAIN}</th>" in page and "9 / no limit" in page and "17 / no limit" in page
            assert not [leak for leak in RIVAL_LEAKS if leak in page], params
            assert "All accounts" not in page and 'data-account="' not in page
