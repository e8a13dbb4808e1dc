"""The premium page reads on the panel's reader thread, not on the loop's connection.

On a year of traffic the page grouped a month's 300,000 votes (1-2.5 s) and looked up each of 2,200
services' reply list, account and kept votes one by one on the loop's connection: every SMTP reply
of the daemon waited 2.5-4.6 s for a company admin's reload.
"""

from __future__ import annotations

import re

from gateway.premium.repo import PremiumRepo
from gateway.web.app import WebContext
from tests.test_web_limits import statements, trace_reader
from tests.web_helpers import ADMIN, OPERATOR, as_user
from tests.web_helpers import web as web  # the fixture


async def test_the_premium_page_reads_on_the_reader_thread(web: WebContext) -> None:
    store = web.store
    premium = PremiumRepo(store.db, store.clock)

    def seed() -> None:
        acme = store.accounts.get_account("acme").id
        for n in range(3):  # unconfirmed, each with votes kept for it and a reply list of two
            service = premium.add_service(f"KP5{n}", acme, ADMIN, [], [ADMIN, f"boss{n}@acme.example"])
            for k in range(n + 1):
                store.db.conn.execute(
                    "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts,"
                    " price, commission, text, state, received_at) VALUES (?, '7355', '+48601000009', ?, ?,"
                    " ?, 1, 300, 110, 'x', 'awaiting', ?)",
                    (1000 + 10 * n + k, service, acme, f"KP5{n}", store.clock()),
                )

    await store.write(seed)
    for email, shown, hidden in ((ADMIN, ["KP100", "KP50"], ["KP777"]), (OPERATOR, ["KP100", "KP777"], [])):
        on_reader: list[str] = []
        with statements(web) as on_loop:
            await trace_reader(web, True, on_reader)
            try:
                async with as_user(web, email) as c:
                    r = await c.get("/premium")
            finally:
                await trace_reader(web, False, on_reader)
        assert r.status_code == 200, r.text
        assert not [sql for sql in on_loop if "premium_" in sql], on_loop
        for table in ("premium_mo", "premium_services", "premium_reply_acl", "premium_verifications"):
            assert [sql for sql in on_reader if table in sql], (table, on_reader)
        # One read per kind of thing, not one per service: 3 services more add a confirmation's
        # look each (they wait for one), nothing else.
        assert len([sql for sql in on_reader if "premium_reply_acl" in sql]) == 1, on_reader
        services = re.search(r'<table id="services">.*?</table>', r.text, re.S)
        table = services.group(0) if services else r.text
        for password in shown:
            assert password in table, (password, table)
        for password in hidden:
            assert password not in r.text
        assert "boss2@acme.example" in table and "acme" in table
        # KP52 keeps its three votes, KP50 its one; the month's money is the page's as before.
        row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*KP52(?:(?!</tr>).)*</tr>", table, re.S)
        assert row and "unconfirmed: 3 SMS kept" in row.group(0), row and row.group(0)
        assert "7.38" in r.text


async def test_a_billed_months_votes_are_grouped_once_and_named_at_each_load(web: WebContext) -> None:
    # A month's votes were grouped at every load: 1-2.5 s for 300,000. Once the month is billed they
    # change only by corrections (read each time); a service removed since is named so at once.
    store = web.store
    ended = store.month.previous().previous()  # type: ignore[attr-defined]  # its late parts' bound passed
    start, _ = ended.bounds(web.tz)
    premium = PremiumRepo(store.db, store.clock)
    acme = store.accounts.get_account("acme").id

    def seed() -> None:
        service = premium.add_service("KP60", acme, ADMIN, [], [ADMIN])
        store.db.conn.execute(
            "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts,"
            " price, commission, text, state, received_at) VALUES (2000, '7355', '+48601000009', ?, ?,"
            " 'KP60', 3, 900, 330, 'x', 'mailed', ?)",
            (service, acme, start + 86400),
        )

    def seed_billed() -> None:
        store.db.conn.execute(
            "INSERT INTO billing_state (key, value) VALUES ('last_billed', ?)", (str(ended),)
        )

    async def load() -> tuple[str, list[str]]:
        seen: list[str] = []
        await trace_reader(web, True, seen)
        try:
            async with as_user(web, ADMIN) as c:
                page = (await c.get(f"/premium?month={ended}")).text
        finally:
            await trace_reader(web, False, seen)
        figures = re.search(r'<table id="figures">.*?</table>', page, re.S)
        assert figures is not None
        return figures.group(0), [sql for sql in seen if "GROUP BY p.service_id, p.number" in sql]

    await store.write(seed)
    table, grouped = await load()
    assert "<td>KP60</td><td>7355</td><td>1</td><td>3</td><td>9.00</td><td>3.30</td>" in table, table
    assert len(grouped) == 1
    assert len((await load())[1]) == 0  # not billed: kept, as no vote was stored or changed since
    await store.write(seed_billed)
    assert len((await load())[1]) == 1  # billed: grouped once more, then kept
    service = premium.active_service("KP60")
    assert service is not None
    await store.write(lambda: premium.update_service(service.id, removed_at=store.clock()))
    table, grouped = await load()
    assert grouped == [], grouped
    assert "<td>KP60 (removed)</td><td>7355</td><td>1</td><td>3</td><td>9.00</td><td>3.30</td>" in table, (
        table
    )
