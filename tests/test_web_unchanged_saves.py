"""A panel save that changes nothing records nothing and says so, as the CLI does.

The account form saved as it was loaded wrote the audit row "account.set acme: nothing" and said
"account acme updated", as did a company admin's form carrying the operator's fields (sender, monthly
limit, countries), which are rightly ignored; a user's limits saved as they were wrote "user.limits
jan@acme.example nothing". `account set` and `user set` say "unchanged: it had these settings
already" and write no row; `WebContext.change` writes no record of a change that did nothing.

Against the real daemon: the panel over real HTTP with logged-in sessions (httpx over TCP, each form
read from the served HTML as a browser submits it), the audit trail read from the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_web_stale_forms import ADMIN, settings_form
from tests.test_web_stale_limits import JAN, admin_and_operator, limits_form, limits_set


def audit_rows(store: Any) -> list[tuple[str, str]]:
    rows = store.db.conn.execute(
        "SELECT action, detail FROM audit WHERE action IN ('account.set', 'user.limits')"
    )
    return [tuple(r) for r in rows]


async def test_saves_that_change_nothing_write_no_row_and_say_unchanged(tmp_path: Path) -> None:
    async with admin_and_operator(tmp_path) as (gw, admin, operator):
        before, had = audit_rows(gw.store), gw.store.accounts.get_account("acme")
        r = await admin.post("/account", data=settings_form((await admin.get("/account")).text))
        assert r.status_code == 303, r.text
        page = (await admin.get(r.headers["location"])).text
        assert "account acme unchanged: it had these settings already" in page
        assert "account acme updated" not in page
        assert audit_rows(gw.store) == before

        # The operator's fields, sent by a company admin: ignored, so nothing changed either.
        forged = {"sender": "ACME", "monthly_limit": "5", "countries": "PL DE"}
        r = await admin.post("/account", data={**settings_form((await admin.get("/account")).text), **forged})
        assert r.status_code == 303, r.text
        page = (await admin.get(r.headers["location"])).text
        assert "account acme unchanged: it had these settings already" in page
        assert gw.store.accounts.get_account("acme") == had
        assert audit_rows(gw.store) == before

        # The operator's form of the account, saved as loaded.
        form = settings_form((await operator.get("/account?account=acme")).text)
        r = await operator.post("/account?account=acme", data=form)
        assert r.status_code == 303, r.text
        assert "account acme unchanged" in (await operator.get(r.headers["location"])).text
        assert audit_rows(gw.store) == before

        # A user's limits saved as they were.
        r = await admin.post("/users", data=limits_form((await admin.get("/users")).text))
        assert r.status_code == 303, r.text
        page = (await admin.get(r.headers["location"])).text
        assert f"user {JAN} unchanged: it had these limits already" in page
        assert limits_set(gw.store) == []

        # A change is still a change, recorded and said so.
        r = await admin.post(
            "/users", data={**limits_form((await admin.get("/users")).text), "daily_limit": "20"}
        )
        assert f"user {JAN} updated" in (await admin.get(r.headers["location"])).text
        assert limits_set(gw.store) == [(ADMIN, f"{JAN} daily=20")]
        r = await admin.post(
            "/account", data={**settings_form((await admin.get("/account")).text), "bulk": "on"}
        )
        assert "account acme updated" in (await admin.get(r.headers["location"])).text
        assert audit_rows(gw.store)[len(before) :] == [
            ("user.limits", f"{JAN} daily=20"),
            ("account.set", "acme: bulk=1"),
        ]
