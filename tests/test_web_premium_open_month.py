"""The premium page's figures for a month still open: kept, and extended by the votes stored since.

On a year of traffic the page regrouped the current month's 300,000 votes at every load (0.8-2.4 s
on the panel's reader thread, every other admin's page waiting behind it). It now keeps the month's
grouping and adds the votes stored since; a vote stored before that changes what it counts (claimed,
released, moved to another account) makes it group the month anew. Whatever happens, its figures
must be the plain query's (`premium.stats.traffic`), for the operator and for each account.

Real SQLite file, the panel over HTTP, the plain query on a connection of its own.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from itertools import count

from billing_reports.monthly import Month
from gateway.premium.repo import PremiumRepo
from gateway.premium.stats import traffic
from gateway.web.app import WebContext
from gateway.web.services import _figure
from tests.test_web_limits import trace_reader
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, as_user
from tests.web_helpers import web as web  # the fixture

GROUPING = "GROUP BY p.service_id, p.number"
ROW = re.compile(
    r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>"
)


async def test_an_open_months_kept_figures_are_the_plain_querys_through_late_parts_and_moves(
    web: WebContext,
) -> None:
    store = web.store
    conn = store.db.conn
    premium = PremiumRepo(store.db, store.clock)
    month = Month.containing(store.clock(), web.tz)
    start, end = month.bounds(web.tz)
    acme = store.accounts.get_account("acme").id
    rival = store.accounts.get_account("rival").id
    scopes = {OPERATOR: None, ADMIN: acme, OTHER_ADMIN: rival}
    mo_ids = count(5000)

    def vote(
        service: int | None,
        account: int | None,
        received: float,
        *,
        parts: int = 1,
        parts_at: float | None = None,
        follows: int | None = None,
        number: str = "7355",
    ) -> int:
        cur = conn.execute(
            "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts, price,"
            " commission, text, state, received_at, parts_at, follows)"
            " VALUES (?, ?, '+48601000009', ?, ?, NULL, ?, ?, ?, 'x', 'mailed', ?, ?, ?)",
            (
                next(mo_ids),
                number,
                service,
                account,
                parts,
                300 * parts,
                110 * parts,
                received,
                parts_at,
                follows,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    ids: dict[str, int] = {}

    def seed() -> None:
        kp70 = premium.add_service("KP70", acme, ADMIN, [], [ADMIN])
        kp71 = premium.add_service("KP71", rival, OTHER_ADMIN, [], [OTHER_ADMIN])
        ids.update(kp70=kp70, kp71=kp71)
        ids["long"] = vote(kp70, acme, start + 3600, parts=2)
        vote(kp70, acme, start + 7200, number="7155")
        vote(kp71, rival, start + 7200)
        ids["unknown"] = vote(None, None, start + 9000)
        # Its first part came the month before: billed there, not here.
        vote(kp70, acme, start + 60, parts_at=start - 30)
        # Joined after the month, its first part in it: billed here.
        vote(kp71, rival, end + 100, parts_at=end - 50)

    async def load(email: str) -> tuple[list[tuple[str, ...]], list[str]]:
        seen: list[str] = []
        await trace_reader(web, True, seen)
        try:
            async with as_user(web, email) as c:
                r = await c.get(f"/premium?month={month}")
        finally:
            await trace_reader(web, False, seen)
        assert r.status_code == 200, r.text
        table = re.search(r'<table id="figures">.*?</table>', r.text, re.S)
        assert table is not None, r.text
        return ROW.findall(table.group(0)), [sql for sql in seen if GROUPING in sql]

    def plain(account: int | None) -> list[tuple[str, ...]]:
        with closing(sqlite3.connect(f"file:{store.db.path}?mode=ro", uri=True)) as own:
            figures = traffic(own, start, end, account)
        return [tuple(str(v) for v in list(_figure(f, correction=False).values())[:6]) for f in figures]

    async def every_scope_as_plain() -> dict[str, list[str]]:
        grouping = {}
        for email, account in scopes.items():
            shown, grouping[email] = await load(email)
            assert shown == plain(account), (email, shown, plain(account))
        return grouping

    await store.write(seed)
    first = await every_scope_as_plain()
    assert all(len(g) == 1 for g in first.values()), first
    assert ("KP70", "7355", "1", "2", "6.00", "2.20") in plain(acme)  # the month before's is not in it
    assert ("KP71", "7355", "2", "2", "6.00", "2.20") in plain(rival)

    # Nothing stored since: the kept figures, no grouping at all.
    assert all(g == [] for g in (await every_scope_as_plain()).values())

    # A vote stored since, and the late part of the long one (a vote of its own that adds parts and
    # money, not an SMS): only the votes after the last one read are grouped.
    await store.write(lambda: vote(ids["kp70"], acme, start + 10_000))
    await store.write(lambda: vote(ids["kp70"], acme, start + 10_001, follows=ids["long"]))
    grouping = await every_scope_as_plain()
    assert all(len(g) == 1 and "AND p.id > " in g[0] for g in grouping.values()), grouping
    assert ("KP70", "7355", "2", "4", "12.00", "4.40") in plain(acme)

    # A vote stored before changes hands: claimed by a service, moved to another account, released.
    # The votes after the last one read are none of these: the month is grouped anew.
    service = premium.active_service("KP70")
    assert service is not None
    for change in (
        lambda: premium.claim_mo(ids["unknown"], service, "password came late"),
        lambda: premium.rebind_mo(ids["long"], rival),
        lambda: premium.release_mo(ids["long"], "fallback", "service removed"),
    ):
        before = plain(None), plain(acme), plain(rival)
        await store.write(change)
        assert (plain(None), plain(acme), plain(rival)) != before
        grouping = await every_scope_as_plain()
        assert all(len(g) == 1 and "AND p.id > " not in g[0] for g in grouping.values()), grouping

    # A vote's state is not among the figures: its change keeps them.
    await store.write(lambda: premium.settle_mo(ids["unknown"], "mailed", "answered"))
    assert all(g == [] for g in (await every_scope_as_plain()).values())
