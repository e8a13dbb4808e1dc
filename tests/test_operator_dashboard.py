"""The operator's dashboard: a line per account, read off the loop; each account's users on its own page.

It listed every user of every account, each with a usage query of its own on the loop: at 6,000 users
671 KB of HTML, 1.4-2.2 s a load and half a second of the event loop stopped for each.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from acl.limits import period_keys
from gateway.store.db import Store
from gateway.web.app import WebContext
from gateway.web.repo import states_since
from tests.test_web_limits import statements, trace_reader
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, PLAIN, RIVAL_LEAKS, add_mail, as_user
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
        assert f'<tr><th scope="row">{PLAIN}</th>' in page and "9 / no limit" in page
        assert all(f'<tr><th scope="row">{email}</th>' in page for email in (ADMIN, *STAFF))
        assert "17 / no limit" in page and '<a href="/">All accounts</a>' in page
        assert OTHER_ADMIN not in page and "carl@rival.example" not in page
        assert 'data-account="' not in page  # not the overview
        assert (await c.get("/", params={"account": "nope"})).status_code == 404
    # A company admin's dashboard is their account's page; naming another account changes nothing.
    async with as_user(web, ADMIN) as c:
        for params in ({}, {"account": "rival"}):
            page = (await c.get("/", params=params)).text
            assert (
                f'<tr><th scope="row">{PLAIN}</th>' in page
                and "9 / no limit" in page
                and "17 / no limit" in page
            )
            assert not [leak for leak in RIVAL_LEAKS if leak in page], params
            assert "All accounts" not in page and 'data-account="' not in page


def test_the_days_counts_read_only_an_index_of_the_days_messages(tmp_path: Path) -> None:
    # By `created_at` alone the operator's "messages today" read every message kept (0.7 s at two
    # million, on the panel's one reader thread); from the day's first mail on, it still read each of
    # the day's messages whole for its state (49 ms at 100,000 a day, growing through the day). The
    # counts come from the (state, id) indexes now, for the operator and for an account.
    clock = [1_800_000_000.0]
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: clock[0])
    try:
        store.accounts.add_account("acme")
        acme = store.accounts.get_account("acme").id
        for hour in range(48):
            clock[0] = 1_800_000_000.0 + hour * 3600
            add_mail(store, "acme", "anna@acme.example", f"+4860100{hour:04d}", f"SMS {hour}")
        conn = store.db.conn
        conn.execute("UPDATE messages SET state = 'delivered' WHERE id % 3 = 0")
        since = 1_800_000_000.0 + 30 * 3600
        plain = "SELECT state, COUNT(*) FROM messages WHERE created_at >= ? GROUP BY state"
        plans = []
        for scope in (None, acme):
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            counted = states_since(conn, scope, since)
            conn.set_trace_callback(None)
            plans += [r[3] for sql in seen for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]  # values in
            assert counted == dict(conn.execute(plain, (since,)).fetchall()) == {"queued": 12, "delivered": 6}
        assert states_since(conn, None, clock[0] + 1) == {}  # no mail since
        assert states_since(conn, acme, clock[0] + 1) == {}
    finally:
        store.close()
    read = [line for line in plans if " messages " in f"{line} " or " m " in f"{line} "]
    assert read and all("USING COVERING INDEX" in line for line in read), plans
    assert "SEARCH m USING COVERING INDEX messages_state (state=? AND rowid>?)" in plans, plans
    assert "SEARCH m USING COVERING INDEX messages_counts (account_id=? AND state=? AND rowid>?)" in plans


def test_the_days_counts_keep_the_mails_before_a_step_back_of_the_clock(tmp_path: Path) -> None:
    # Three mails today; the clock stepped back an hour before the third, whose time is then the
    # day's earliest: counting from it left the two before it out of "messages today".
    day = 1_800_000_000.0
    clock = [day + 10 * 3600]
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: clock[0])
    try:
        store.accounts.add_account("acme")
        for when, number in (
            (10 * 3600, "+48601000001"),
            (10 * 3600 + 300, "+48601000002"),
            (9 * 3600, "+48601000003"),
        ):
            clock[0] = day + when
            add_mail(store, "acme", "anna@acme.example", number, "SMS")
        assert states_since(store.db.conn, None, day) == {"queued": 3}
    finally:
        store.close()
