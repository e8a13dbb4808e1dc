"""The panel's later pages through an ASGI client: billing files, account settings that were CLI-only,
conversations, premium services, and the operator's queue hold."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from billing_reports.writer import month_dir
from gateway.premium import handlers
from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, OPERATOR, as_user, csrf_of, panel_store, web_context

PREMIUM = '[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "premium-ops@example.com"\n'


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, PREMIUM)
    yield web
    web.counts.close()  # the reader's thread and connection (the dashboard opens them)
    store.close()


def _month(web: WebContext) -> str:
    return str(web.store.month)  # type: ignore[attr-defined]


async def test_company_admin_lists_and_downloads_only_the_own_billing_file(web: WebContext) -> None:
    month = _month(web)
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/billing")).text
        assert f'href="/billing/{month}/acme.txt"' in page
        assert "rival.txt" not in page and "_summary.txt" not in page
        r = await c.get(f"/billing/{month}/acme.txt")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.headers["content-disposition"] == f'attachment; filename="{month}-acme.txt"'
        assert r.content == (month_dir(web.config.state_dir, web.store.month) / "acme.txt").read_bytes()  # type: ignore[attr-defined]
        assert "\t7.38\t1.50\n" in r.text and "3.69" not in r.text  # acme's premium money only
        for name in ("rival.txt", "_summary.txt", "nothing.txt"):
            assert (await c.get(f"/billing/{month}/{name}")).status_code == 404, name


async def test_operator_lists_every_file_and_the_summary(web: WebContext) -> None:
    month = _month(web)
    ended = web.store.month.previous()  # type: ignore[attr-defined]
    state = web.config.state_dir
    shutil.copytree(month_dir(state, web.store.month), month_dir(state, ended))  # type: ignore[attr-defined]
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/billing")).text
        for name in ("acme.txt", "rival.txt", "_summary.txt"):
            assert f'href="/billing/{month}/{name}"' in page, name
            assert f'href="/billing/{ended}/{name}"' in page, name
        # This month's files were written by hand: the month so far, not a bill; last month's are.
        rows = {row.split("</td>")[0]: row for row in page.split("<tr><td>")[1:]}
        assert rows[f'{month} <em class="so-far">so far: the month has not ended, not a bill</em>']
        assert rows[str(ended)]
        r = await c.get(f"/billing/{month}/_summary.txt")
        assert r.status_code == 200 and r.text.startswith("# smsgw billing summary")


async def test_a_month_whose_run_stopped_partway_is_listed_incomplete(web: WebContext) -> None:
    # `billing list` says INCOMPLETE for a month a run left partway (Ctrl-C, the daemon killed);
    # the panel listed its account files as any month's.
    from billing_reports.files import mark_incomplete

    ended = web.store.month.previous()  # type: ignore[attr-defined]
    state = web.config.state_dir
    shutil.copytree(month_dir(state, web.store.month), month_dir(state, ended))  # type: ignore[attr-defined]
    mark_incomplete(month_dir(state, ended), str(ended))
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/billing")).text
    rows = {row.split("</td>")[0]: row for row in page.split("<tr><td>")[1:]}
    said = "incomplete: a run stopped partway, the next one writes the month again"
    marked = f'{ended} <em class="incomplete">{said}</em>'
    assert marked in rows, list(rows)
    assert not any("incomplete" in key for key in rows if key.startswith(_month(web)))


async def test_billing_download_never_leaves_the_month_directory(web: WebContext, tmp_path: Path) -> None:
    month = _month(web)
    (tmp_path / "secret.txt").write_text("outside the billing directory")
    (tmp_path / "billing" / "secret.txt").write_text("outside the month directory")
    attempts = [
        f"/billing/{month}/..%2F..%2Fsecret.txt",
        f"/billing/{month}/..%2Fsecret.txt",
        f"/billing/{month}/%2E%2E%2Fsecret.txt",
        f"/billing/{month}/..%5Csecret.txt",
        f"/billing/{month}/acme.txt%2F..%2F..%2Fsecret.txt",
        "/billing/..%2F..%2F/secret.txt",
        "/billing/../secret.txt",
        "/billing/%2E%2E/secret.txt",
        f"/billing/{month.replace('-', '-0')}/acme.txt",  # not the canonical spelling of a month
        f"/billing/{month}/panel.db",
        f"/billing/{month}/.acme.txt.1.tmp",
    ]
    for email in (OPERATOR, ADMIN):
        async with as_user(web, email) as c:
            for path in attempts:
                r = await c.get(path)
                assert r.status_code == 404, (email, path, r.status_code)
                assert "outside the" not in r.text
            raw = await c.send(httpx.Request("GET", f"http://panel.test/billing/{month}/../../secret.txt"))
            assert raw.status_code == 404 and "outside the" not in raw.text


async def test_account_page_sets_billing_addresses_and_the_cli_only_settings(web: WebContext) -> None:
    accounts = web.store.accounts
    acme = accounts.get_account("acme")
    form = {"split_mode": "concatenated", "dlr_mail": "none", "overflow": "reject", "confirm": "on"}
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        r = await c.post("/account", data={**form, "csrf": token, "billing_to": "billing@acme, nobody"})
        assert r.status_code == 400 and "is not an email address (or &#39;none&#39;" in r.text
        # An address on the gateway's own domain: its mail would come back to the gateway, refused there.
        r = await c.post("/account", data={**form, "csrf": token, "billing_to": "books@SMS.example.com"})
        assert r.status_code == 400 and "would loop: sms.example.com is one of [gateway] domains" in r.text
        r = await c.post("/account", data={**form, "csrf": token, "notify_address": "ops@sms.example.com"})
        assert r.status_code == 400 and "would loop" in r.text
        assert accounts.billing_addresses(acme.id) == []
        # Addresses end up in headers and envelopes as typed: a display name or a line break is refused.
        for bad in ("books@acme.example\r\nBcc: x@evil.example", "Books <books@acme.example>"):
            r = await c.post("/account", data={**form, "csrf": token, "notify_address": bad})
            assert r.status_code == 400 and "is not an email address" in r.text, bad
        assert accounts.get_account("acme").notify_address is None
        users_token = csrf_of((await c.get("/users")).text)
        injected = "x@acme.example\nBcc: y@evil.example"
        r = await c.post("/users", data={"csrf": users_token, "action": "add", "email": injected})
        assert r.status_code == 400 and "is not an email address" in r.text
        # A user on the gateway's own domain: the phones' answers to that user would come back to
        # the gateway and be refused; the user would never see one.
        r = await c.post(
            "/users", data={"csrf": users_token, "action": "add", "email": "623@sms.example.com"}
        )
        assert r.status_code == 400 and "would loop" in r.text
        assert accounts.find_user("623@sms.example.com") is None
        data = {**form, "csrf": token, "billing_to": "books@acme.example, cfo@acme.example", "bulk": "on"}
        r = await c.post(
            "/account", data={**data, "monthly_limit": "5", "daily_limit": "1"}, follow_redirects=True
        )
        assert r.status_code == 200 and 'value="books@acme.example cfo@acme.example"' in r.text
        assert accounts.billing_addresses(acme.id) == ["books@acme.example", "cfo@acme.example"]
        acc = accounts.get_account("acme")
        assert (acc.overflow, acc.confirm, acc.bulk) == ("reject", True, True)
        assert acc.monthly_limit is None and acc.daily_limit is None  # the operator's to set
        await c.post("/account", data={**form, "csrf": token, "billing_to": "none"})
        assert accounts.billing_addresses(acme.id) == []
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/account?account=rival")).text)
        r = await c.post(
            "/account?account=rival",
            data={**form, "csrf": token, "monthly_limit": "1000", "daily_limit": "ten"},
        )
        assert r.status_code == 400 and "give a whole number of SMS parts" in r.text
        await c.post("/account?account=rival", data={**form, "csrf": token, "monthly_limit": "1000"})
        assert accounts.get_account("rival").monthly_limit == 1000
    details = [e["detail"] for e in web.repo.audit_log(None)]
    assert any("billing_to=books@acme.example cfo@acme.example" in d for d in details)


async def test_conversations_page_per_role(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/conversations")).text
        assert "+48601000001" in page and "acme subject" in page
        assert "+48602000002" not in page and "rival subject" not in page and 'id="mo"' not in page
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/conversations")).text
        assert "acme subject" in page and "rival subject" in page and 'id="mo"' in page


async def test_a_strangers_subject_and_sender_are_shown_with_their_controls_escaped(web: WebContext) -> None:
    # A mail's subject and envelope sender are a stranger's text: a U+202E in them reversed the
    # rest of the field on the message page and in the conversations list.
    store = web.store
    mine = store.mine  # type: ignore[attr-defined]

    def flipped() -> None:
        conn = store.db.conn
        conn.execute(
            "UPDATE emails SET subject = 'bill \u202etxet', mail_from = 'eve\u202emoc.liame@x.example'"
            " WHERE id = (SELECT email_id FROM messages WHERE id = ?)",
            (mine,),
        )
        conn.execute("UPDATE conversations SET subject = 'chat \u202etxet'")

    await store.write(flipped)
    async with as_user(web, ADMIN) as c:
        message = (await c.get(f"/messages/{mine}")).text
        conversations = (await c.get("/conversations")).text
    for page in (message, conversations):
        assert "\u202e" not in page.split("<main", 1)[-1]
    assert "bill \\u202etxet" in message and "eve\\u202emoc.liame@x.example" in message
    assert "chat \\u202etxet" in conversations


async def test_premium_page_shows_state_acl_and_the_months_money(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/premium")).text
        assert "KP100" in page and "unconfirmed: 0 SMS kept" in page and ADMIN in page
        assert "<td>7.38</td><td>1.50</td>" in page  # 738 and 150 grosze
        assert "KP777" not in page and "3.69" not in page and 'id="add-service"' not in page
        token = csrf_of(page)
        r = await c.post(
            "/premium", data={"csrf": token, "password": "KP200", "account": "acme", "email": ADMIN}
        )
        assert r.status_code == 403
    async with as_user(web, OPERATOR) as c:
        page = (await c.get(f"/premium?month={_month(web)}")).text
        assert "KP100" in page and "KP777" in page and "3.69" in page

        async def add(**data: str) -> httpx.Response:
            return await c.post("/premium", data={"csrf": csrf_of(page), "account": "acme", **data})

        r = await add(password="XY12", email="sms@acme.example")
        assert r.status_code == 400 and "must be KP followed by three letters or digits" in r.text
        r = await add(password="kp200", email="not an address")
        assert "is not a plain email address" in r.text
        r = await add(password="kp200", email="sms@acme.example", number="7955")
        assert "number 7955 is not a configured premium number (7155, 7355)" in r.text
        assert "--number" not in r.text
        r = await add(password="kp100", email="sms@acme.example")
        assert "password KP100 is taken" in r.text
        r = await add(password="kp200", email="sms@acme.example", number="7355", reply_acl="a@acme.example")
        assert r.status_code == 303  # to the page, which says what was done
        r = await c.get(r.headers["location"])
        assert "premium service KP200 added for account acme, numbers 7355" in r.text
    repo = handlers.repo(web.store)
    service = repo.active_service("KP200")
    assert service is not None and service.number_list == ["7355"] and service.verified_at is None
    assert repo.acl(service.id) == ["a@acme.example"]
    assert [o["rcpt"] for o in web.store.admin.list_outbox()][:1] == ["sms@acme.example"]  # the confirmation


async def test_premium_form_refuses_a_client_address_on_the_gateways_domain(web: WebContext) -> None:
    """Its confirmation would come back to the gateway and be refused: never confirmed, the
    service's paid SMS would be kept for good."""
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/premium")).text
        for data in (
            {"email": "777@SMS.example.com"},
            {"email": "k@acme.example", "reply_acl": "x@sms.example.com"},
        ):
            r = await c.post(
                "/premium", data={"csrf": csrf_of(page), "account": "acme", "password": "KP300", **data}
            )
            assert r.status_code == 400 and "would loop" in r.text, r.text
    assert handlers.repo(web.store).active_service("KP300") is None


async def test_operator_holds_a_waiting_message_and_a_retry_releases_it(web: WebContext) -> None:
    mine = web.store.mine  # type: ignore[attr-defined]
    admin = web.store.admin
    async with as_user(web, ADMIN) as c:
        r = await c.post(f"/messages/{mine}/hold", data={"csrf": csrf_of((await c.get("/")).text)})
        assert r.status_code == 403 and admin.message_info(mine)["state"] == "queued"
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get(f"/messages/{mine}")).text)
        assert (await c.post(f"/messages/{mine}/hold", data={"csrf": token})).status_code == 303
        assert admin.message_info(mine)["state"] == "hold"
        parts = web.store.db.conn.execute("SELECT state FROM parts WHERE message_id = ?", (mine,)).fetchall()
        assert parts == [("hold",)]
        assert "held by the administrator" in (await c.get(f"/messages/{mine}")).text
        assert (await c.post(f"/messages/{mine}/retry", data={"csrf": token})).status_code == 303
        assert admin.message_info(mine)["state"] == "queued"
    assert [e["action"] for e in web.repo.audit_log(None)][:2] == ["message.retry", "message.hold"]


async def test_message_search_by_sender_reads_an_index_not_every_message(web: WebContext) -> None:
    """At a million rows the search by user walked every message newest first (bench/web_search.py)."""
    conn = web.store.db.conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        web.repo.search_messages(None, user="BOSS@acme.example", limit=51)
    finally:
        conn.set_trace_callback(None)
    sql = next(s for s in seen if "mail_from" in s)
    plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert "emails_sender" in plan, plan


async def test_message_page_shows_what_the_mail_program_asked_to_be_told(web: WebContext) -> None:
    """SMTP DSN's NOTIFY overrides the account's dlr_mail for one SMS: the page says so, or a
    company admin cannot tell why a failure was never mailed."""
    store = web.store
    mine = store.mine  # type: ignore[attr-defined]
    async with as_user(web, ADMIN) as c:
        before = (await c.get(f"/messages/{mine}")).text
    assert 'id="notify"' not in before and 'id="orcpt"' not in before and 'id="dsn"' not in before

    def asked() -> None:
        store.db.conn.execute(
            "UPDATE messages SET notify = 'never', orcpt = 'rfc822;anna@crm.acme.example' WHERE id = ?",
            (mine,),
        )
        store.db.conn.execute(
            "UPDATE emails SET envid = 'QQ314159', dsn_ret = 'hdrs'"
            " WHERE id = (SELECT email_id FROM messages WHERE id = ?)",
            (mine,),
        )

    await store.write(asked)
    async with as_user(web, ADMIN) as c:
        page = (await c.get(f"/messages/{mine}")).text
    assert '<dd id="notify">none (the mail program asked NOTIFY=NEVER)</dd>' in page
    assert '<dd id="orcpt">rfc822;anna@crm.acme.example</dd>' in page
    assert '<dd id="dsn">envelope id QQ314159, notices return the headers only</dd>' in page
