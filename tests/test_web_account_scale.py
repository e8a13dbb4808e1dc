"""An account of many users: its dashboard lists a bounded few, and its admin's add reads its domains
in one query.

The dashboard of one account (`/?account=NAME`, a company admin's own) listed every user: at 3,000
users a page of megabytes rendered on the loop, its users at their limits lost among the rest. It
lists `SHOWN`, those at their limit first and then the most used, with the count and a link to the
users page (which pages and filters). A company admin's add loaded every user of the account on the
loop to learn its domains (`AccountsRepo.list_users`); it is one bounded query now, and the refusal
names at most `NAMED` of the account's domains.

Against the real daemon over real HTTP, as the users page's tests (`panel`: acme with two and a half
pages of users).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from gateway.web.pages import SHOWN
from gateway.web.userdomains import NAMED
from tests.conftest import STAFF
from tests.test_web_stale_forms import ADMIN, ADMIN_PASSWORD, logged_in
from tests.test_web_users_pages import panel

ROW = re.compile(r'<tr><th scope="row">([^<]+@[^<]+)</th>')


def month_of(page: str) -> str:
    found = re.search(r"Use in (\d{4}-\d{2}) against limits", page)
    assert found, "no month on the dashboard"
    return found.group(1)


async def test_an_accounts_dashboard_lists_those_at_their_limit_then_the_most_used(tmp_path: Path) -> None:
    async with panel(tmp_path) as (gw, base, password), logged_in(base, ADMIN, ADMIN_PASSWORD) as admin:
        everyone = [*gw.acme]
        assert len(everyone) > SHOWN * 2
        month = month_of((await admin.get("/")).text)
        accounts = gw.store.accounts
        # 60 users with some use (more than the page lists), the quiet one at its own limit of 1.
        busy = {email: 100 + i for i, email in enumerate(everyone[:60])}
        stopped = everyone[-1]

        def use() -> None:
            for email, parts in busy.items():
                accounts.add_usage([f"user:{accounts.find_user(email).id}"], [month], parts)  # type: ignore[union-attr]
            accounts.add_usage([f"user:{accounts.find_user(stopped).id}"], [month], 1)  # type: ignore[union-attr]
            accounts.set_user(stopped, monthly_limit=1)

        await gw.store.write(use)
        page = (await admin.get("/")).text
        listed = ROW.findall(page)
        most = sorted(busy, key=busy.__getitem__, reverse=True)
        assert listed == [stopped, *most[: SHOWN - 1]]
        assert f"{stopped}</th>" in page and "1 / 1" in page
        shown = html.unescape(re.search(r'<p class="hint" id="users-shown">(.*?)</p>', page, re.S).group(1))  # type: ignore[union-attr]
        assert shown.startswith(f"{SHOWN} of {len(everyone)} users: the 1 at their limit first, then")
        assert '<a href="/users">the users page</a>' in shown
        assert len(page) < 40_000, len(page)
        # The operator's view of the account: the same list, the link to the account's users page.
        async with logged_in(base, STAFF, password) as operator:
            page = (await operator.get("/?account=acme")).text
            assert ROW.findall(page) == listed
            assert '<a href="/users?account=acme">the users page</a>' in page


async def test_a_company_admins_add_reads_the_accounts_domains_in_one_bounded_query(tmp_path: Path) -> None:
    async with panel(tmp_path) as (gw, base, _), logged_in(base, ADMIN, ADMIN_PASSWORD) as admin:
        accounts = gw.store.accounts
        # acme's users at more domains than a refusal names (besides acme.example's hundred and more).
        others = [f"d{i:02d}.example" for i in range(NAMED + 5)]

        def spread() -> None:
            for domain in others:
                accounts.add_user(f"someone@{domain}", "acme")

        await gw.store.write(spread)
        page = (await admin.get("/users")).text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        conn = gw.store.db.conn
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            refused = await admin.post(
                "/users", data={"csrf": token, "action": "add", "email": "x@elsewhere.example"}
            )
        finally:
            conn.set_trace_callback(None)
        assert refused.status_code == 400
        named = sorted(["acme.example", *others])[:NAMED]
        said = f"x@elsewhere.example is not at a domain of this account ({', '.join(named)}, …);"
        assert said in html.unescape(refused.text)
        # No read of the users table on the daemon's own connection: the domains' one query runs on
        # the panel's reader thread (`test_web_user_add_reads`); no list of the account's users.
        on_users = [sql for sql in seen if re.search(r"\bFROM users\b", sql)]
        assert on_users == [], on_users
        assert not [sql for sql in seen if "ORDER BY a.name, u.email" in sql], seen
        # A domain past the ones a refusal names is the account's all the same.
        last = others[-1]
        assert last not in named
        for email in (f"new@{last}", "new@acme.example"):
            r = await admin.post("/users", data={"csrf": token, "action": "add", "email": email})
            assert r.status_code == 303, r.text
            assert accounts.find_user(email) is not None
