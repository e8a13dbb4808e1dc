"""What a company admin and the operator do in the panel, through the real app on a real SQLite file:
account names in URLs, senders no SMSC takes, queue actions that did nothing, the time zone, premium
money of removed services, the CSV export, limit fields, opt-outs an admin added, forms that forgot
what was typed, destructive buttons, edited URLs and labels."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import file_name, month_dir, write_month
from gateway.premium import handlers
from gateway.store.db import Store
from gateway.web import messages
from gateway.web.app import WebContext
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    OTHER_ADMIN,
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
        assert store.admin.retry_message(mid) == 0
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


# ---- 6: the CSV export ----------------------------------------------------------------------------


async def test_csv_export_in_batches_off_the_loop_with_bom_name_and_a_cut_line(
    web: WebContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = web.store
    for i in range(12):
        await store.write(lambda i=i: add_mail(store, "acme", "łucja@acme.example", "+48601000009", f"t{i}"))
    monkeypatch.setattr(messages, "CSV_BATCH", 5, raising=False)
    on_loop: list[str] = []
    store.db.conn.set_trace_callback(on_loop.append)
    try:
        async with as_user(web, ADMIN) as c:
            chunks = []
            url = "/messages.csv?number=601000009&from=2020-01-01&state=queued"
            async with c.stream("GET", url) as r:
                assert r.status_code == 200
                disposition = r.headers["content-disposition"]
                async for chunk in r.aiter_raw():
                    chunks.append(chunk)
    finally:
        store.db.conn.set_trace_callback(None)
    assert not [sql for sql in on_loop if "FROM messages m JOIN emails" in sql]  # read off the loop
    body = b"".join(chunks)
    assert body.startswith(b"\xef\xbb\xbfid,created,")  # a BOM: Excel then reads UTF-8
    text = body.decode("utf-8-sig")
    assert "łucja@acme.example" in text and len(text.strip().splitlines()) == 13
    assert "cut at" not in text
    assert disposition == 'attachment; filename="messages-2020-01-01_to_now-queued-601000009.csv"'

    monkeypatch.setattr(messages, "CSV_MAX", 7, raising=False)
    async with as_user(web, ADMIN) as c:
        text = (await c.get("/messages.csv?number=601000009")).text
    lines = text.strip().splitlines()
    assert len(lines) == 1 + 7 + 1 and lines[-1].startswith("# cut at 7 rows: narrow the search")


async def test_csv_cells_from_outside_never_start_a_formula(web: WebContext) -> None:
    # A listed sender `=cmd|'/C calc'!A0@…` (a valid address) went into the CSV as it was: Excel,
    # opening the operator's export, ran it as a formula. Such cells now start with an apostrophe.
    store = web.store
    sender = "=cmd|'/C calc'!A0@acme.example"
    await store.write(lambda: add_mail(store, "acme", sender, "+48601000007", "hi"))
    async with as_user(web, ADMIN) as c:
        text = (await c.get("/messages.csv?number=601000007")).text
    (row,) = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1:]
    assert row[3] == "'" + sender and row[4] == "+48601000007"  # the number stays as written


# ---- 7, 8: limits ---------------------------------------------------------------------------------


async def test_limit_fields_take_the_clis_rule(web: WebContext) -> None:
    accounts = web.store.accounts
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/users")).text)
        for bad in ("²", "٣", "99999999999999999999", "-1"):
            data = {"csrf": token, "action": "limits", "email": ADMIN, "monthly_limit": bad}
            r = await c.post("/users", data=data)
            assert r.status_code == 400 and "give a whole number of SMS parts" in _error(r.text), bad
            r = await c.post("/account?account=rival", data={**SETTINGS, "csrf": token, "daily_limit": bad})
            assert r.status_code == 400 and "give a whole number of SMS parts" in _error(r.text), bad
        r = await c.post(
            "/users",
            data={"csrf": token, "action": "limits", "email": ADMIN, "monthly_limit": "9223372036854775807"},
        )
        assert r.status_code == 303
    assert accounts.find_user(ADMIN).monthly_limit == 2**63 - 1
    assert accounts.get_account("rival").daily_limit is None


async def test_a_limit_of_zero_is_shown_as_zero_not_as_no_limit(web: WebContext) -> None:
    accounts = web.store.accounts

    def zero() -> None:
        accounts.update_account("acme", monthly_limit=0, daily_limit=0)
        accounts.set_user(ADMIN, monthly_limit=0)

    await web.store.write(zero)
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/")).text
        assert "0 / 0" in page
        assert f'<tr><th scope="row">{ADMIN}</th>' in page and 'class="over"' in page
        assert "0 parts a month, 0 a day" in (await c.get("/account")).text
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/operator/accounts")).text
        row = re.search(r'<tr data-account="acme">.*?</tr>', page, re.S)
        assert row and "<td>0</td>" in row.group(0)


# ---- 9: opt-outs a company admin added -----------------------------------------------------------


async def test_an_opt_out_added_by_a_company_admin_is_on_their_list(web: WebContext) -> None:
    await web.store.write(lambda: add_mail(web.store, "acme", ADMIN, "+48601555666", "hello"))
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        r = await c.post(
            "/optouts", data={"csrf": token, "action": "add", "number": "+48601555666"}, follow_redirects=True
        )
        assert "+48601555666 is on the opt-out list" in r.text
        listed = re.search(r'<table id="optouts">.*?</table>', r.text, re.S)
        assert listed and "+48601555666" in listed.group(0)
    async with as_user(web, "boss@rival.example") as c:
        assert "+48601555666" not in (await c.get("/account")).text


async def test_a_company_admin_opts_out_only_numbers_their_account_writes_to(web: WebContext) -> None:
    # The list is every account's. Rival's admin could add acme's customers (acme's SMS to them
    # then refused), and adding one that had said STOP answered "already on the opt-out list" (a
    # lookup) and put acme's customer, STOP word and time, in rival's list.
    store = web.store
    await store.write(lambda: store.policy.add_optout("+48601999999", word="STOP", source="mo"))
    await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601999999", "before the STOP"))
    await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601444555", "acme's customer"))
    await store.write(lambda: add_mail(store, "rival", OTHER_ADMIN, "+48601777888", "rival's customer"))
    async with as_user(web, OTHER_ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        for number in ("+48601999999", "+48601444555"):  # acme's, listed or not: the same refusal
            r = await c.post("/optouts", data={"csrf": token, "action": "add", "number": number})
            assert r.status_code == 403 and f"{number} has had no SMS from this account" in r.text
        r = await c.post(
            "/optouts", data={"csrf": token, "action": "add", "number": "+48601777888"}, follow_redirects=True
        )
        assert "+48601777888 is on the opt-out list" in r.text
        listed = re.search(r'<table id="optouts">.*?</table>', r.text, re.S)
        assert listed and "+48601777888" in listed.group(0) and "+48601999999" not in listed.group(0)
    assert not store.policy.is_opted_out("+48601444555")
    async with as_user(web, OPERATOR) as c:  # the operator adds any number, on any account's page
        token = csrf_of((await c.get("/account")).text)
        r = await c.post(
            "/optouts", data={"csrf": token, "action": "add", "number": "+48601444555"}, follow_redirects=True
        )
        assert "+48601444555 is on the opt-out list" in r.text


async def test_an_opt_out_the_operator_adds_on_an_accounts_page_is_that_accounts(web: WebContext) -> None:
    # Defect: it was filed under the operator's own account (acme here), so acme's admin saw a
    # number rival had written to, and rival's admin did not.
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/account", params={"account": "rival"})).text)
        data = {"csrf": token, "action": "add", "number": "+48602999999"}
        r = await c.post("/optouts", params={"account": "rival"}, data=data, follow_redirects=True)
        assert "+48602999999 is on the opt-out list" in r.text
    async with as_user(web, OTHER_ADMIN) as c:
        assert "+48602999999" in (await c.get("/account")).text
    async with as_user(web, ADMIN) as c:
        assert "+48602999999" not in (await c.get("/account")).text


async def test_only_the_operator_sets_an_accounts_sender(web: WebContext) -> None:
    # Defect: rival's admin could set acme's number as rival's sender; a phone's answer to acme's
    # SMS then went to rival's user (replies go to the latest sender from a number) and was billed
    # to rival.
    accounts = web.store.accounts
    async with as_user(web, OTHER_ADMIN) as c:
        page = (await c.get("/account")).text
        assert 'name="sender"' not in page and "Sender (set by the operator)" in page
        data = {**SETTINGS, "csrf": csrf_of(page), "sender": "+48100200300"}
        r = await c.post("/account", data=data, follow_redirects=True)
        # Ignored, so nothing changed: not "updated", which read as if the sender had been set.
        assert r.status_code == 200 and "account rival unchanged" in r.text
    assert accounts.get_account("rival").sender is None
    async with as_user(web, ADMIN) as c:  # an admin's save keeps the sender the operator set
        r = await c.post("/account", data={**SETTINGS, "csrf": csrf_of((await c.get("/account")).text)})
        assert r.status_code == 303
    assert accounts.get_account("acme").sender == "+48100200300"
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/account", params={"account": "rival"})).text
        data = {**SETTINGS, "csrf": csrf_of(page), "sender": "RIVAL"}
        r = await c.post("/account", params={"account": "rival"}, data=data, follow_redirects=True)
        assert r.status_code == 200 and "account rival updated" in r.text
    assert accounts.get_account("rival").sender == "RIVAL"


async def test_a_company_admin_adds_users_of_their_own_domains_and_learns_nothing_of_others(
    web: WebContext,
) -> None:
    # Defect: acme's admin added nobody@rival.example (rival's admin could then neither add nor
    # remove it, and the relay refused rival's mail from it), and adding carl@rival.example said
    # "exists already", telling that rival has such a user.
    accounts = web.store.accounts
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        for email in ("nobody@rival.example", "carl@rival.example"):
            r = await c.post("/users", data={"csrf": token, "action": "add", "email": email})
            assert r.status_code == 400 and "not at a domain of this account (acme.example)" in _error(r.text)
            assert "exists" not in r.text
        assert accounts.find_user("nobody@rival.example") is None
        r = await c.post(
            "/users",
            data={"csrf": token, "action": "add", "email": "new@acme.example"},
            follow_redirects=True,
        )
        assert r.status_code == 200 and "user new@acme.example added" in r.text
        r = await c.post("/users", data={"csrf": token, "action": "add", "email": "new@acme.example"})
        assert r.status_code == 400 and "exists already" in _error(r.text)  # their own: said
    await web.store.write(lambda: accounts.add_user("eve@acme.example", "rival"))
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        r = await c.post("/users", data={"csrf": token, "action": "add", "email": "eve@acme.example"})
        assert r.status_code == 400 and _error(r.text) == "eve@acme.example cannot be added; ask the operator"
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/users", params={"account": "rival"})).text)
        data = {"csrf": token, "action": "add", "account": "rival", "email": "second@rival-group.example"}
        r = await c.post("/users", params={"account": "rival"}, data=data)
        assert r.status_code == 303, _error(r.text)
    assert accounts.find_user("second@rival-group.example") is not None


# ---- 10: a refused form keeps what was typed -----------------------------------------------------


async def test_a_refused_form_shows_what_was_typed_in_the_forms_words(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        data = {**SETTINGS, "csrf": token, "sender": "ACME", "end_marker": "--", "notify_address": "nobody"}
        r = await c.post("/account", data=data)
        assert r.status_code == 400 and "is not an email address" in _error(r.text)
        assert 'name="end_marker" value="--"' in r.text
        assert 'name="notify_address" value="nobody"' in r.text
        data = {"csrf": token, "action": "limits", "email": ADMIN, "monthly_limit": "ten", "daily_limit": "3"}
        r = await c.post("/users", data=data)
        assert r.status_code == 400 and 'value="ten"' in r.text and 'value="3"' in r.text
        r = await c.post("/users", data={"csrf": token, "action": "add", "email": "nobody"})
        assert r.status_code == 400 and 'id="new-email" value="nobody"' in r.text
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/premium")).text)
        data = {"csrf": token, "password": "KP300", "account": "rival", "email": "not an address"}
        r = await c.post("/premium", data={**data, "reply_acl": "x@rival.example", "number": "7355"})
        assert r.status_code == 400
        assert (
            _error(r.text) == "mail address 'not an address' is not a plain email address (user@example.com)"
        )
        assert "--" not in _error(r.text)
        assert 'value="KP300"' in r.text and 'value="x@rival.example"' in r.text
        assert "<option selected>rival</option>" in r.text and 'value="7355" checked' in r.text


# ---- 11, 12: the accounts list and destructive buttons ----------------------------------------------


async def test_the_accounts_list_links_each_accounts_settings(web: WebContext) -> None:
    await web.store.write(lambda: web.store.accounts.add_account("A&B"))
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/operator/accounts")).text
        assert 'href="/account?account=A%26B"' in page and 'href="/account?account=rival"' in page


async def test_destructive_buttons_want_a_confirmation(web: WebContext) -> None:
    mine = web.store.mine  # type: ignore[attr-defined]
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/")).text)
        refused = {
            "/users": {"action": "remove", "email": ADMIN},
            "/operator/accounts": {"action": "suspend", "name": "rival"},
            f"/messages/{mine}/cancel": {},
            "/optouts": {"action": "remove", "number": "+48602000002"},
        }
        for path, data in refused.items():
            r = await c.post(path, data={**data, "csrf": token})
            assert r.status_code == 400 and "confirm" in _error(r.text), path
        # Each box is named for what it confirms: its label alone said "sure" on every row.
        box = '<input type="checkbox" name="confirm" value="yes" required aria-label="sure: '
        for path in ("/users", "/operator/accounts", f"/messages/{mine}", "/account"):
            assert box in (await c.get(path)).text, path
    assert web.store.accounts.find_user(ADMIN) is not None
    assert web.store.accounts.get_account("rival").suspended_at is None
    assert web.store.admin.message_info(mine)["state"] == "queued"
    assert web.store.policy.is_opted_out("+48602000002")


# ---- 13: the dashboard's day counts -------------------------------------------------------------


async def test_dashboard_counts_the_day_off_the_loop(web: WebContext) -> None:
    on_loop: list[str] = []
    async with as_user(web, OPERATOR) as c:
        web.store.db.conn.set_trace_callback(on_loop.append)
        try:
            page = (await c.get("/")).text
        finally:
            web.store.db.conn.set_trace_callback(None)
    assert re.search(r'id="today">\s*<li class="state-queued"><b>2</b> queued', page)
    assert not [sql for sql in on_loop if "GROUP BY state" in sql], on_loop


# ---- 14: billing file names -----------------------------------------------------------------------


async def test_billing_files_are_named_after_the_account(web: WebContext, tmp_path: Path) -> None:
    name = "Łódź Sp. z o.o."
    long = "Spółka Akcyjna " + "ż" * 49  # its file name is cut and ends in a hash

    def lodz() -> None:
        web.store.accounts.add_account(name)
        add_mail(web.store, name, "biuro@lodz.example", "+48601000003", "x")
        web.store.accounts.add_account(long)
        add_mail(web.store, long, "biuro@zz.example", "+48601000004", "x")

    await web.store.write(lodz)
    month: Month = web.store.month  # type: ignore[attr-defined]
    write_month(web.store.db.path, tmp_path, month, ZoneInfo(web.config.gateway.timezone))
    stored = file_name(name)
    assert (month_dir(tmp_path, month) / stored).exists() and stored.startswith("%C5%81")
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/billing")).text
        assert f">{name}</a>" in page and ">%C5%81" not in page
        assert "~" in file_name(long) and f">{long}</a>" in page
        r = await c.get(f"/billing/{month}/{stored.replace('%', '%25')}")
        assert r.status_code == 200
        assert r.headers["content-disposition"] == (
            f'attachment; filename="{month}-__d_ Sp. z o.o..txt"; '
            f"filename*=UTF-8''{month}-%C5%81%C3%B3d%C5%BA%20Sp.%20z%20o.o..txt"
        )


# ---- 15, 16: edited URLs and the state filter ------------------------------------------------------


async def test_edited_urls_get_a_400_with_a_reason_not_a_500_or_a_guess(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for path, words in (
            ("/premium?month=9999-12", "give YYYY-MM between"),
            ("/premium?month=2026-13", "give YYYY-MM between"),
            ("/premium?month=11/2026", "give YYYY-MM between"),
            ("/premium?month=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-11", "give YYYY-MM between"),
            ("/messages?before=99999999999999999999999", "is not a message id"),
            ("/messages?before=%C2%B2", "is not a message id"),
            ("/messages?before=" + "9" * 5000, "is not a message id"),  # past int()'s digit limit: a 500
            ("/messages?from=2026-02-30", "is not a date"),
            ("/messages?to=30.11.2026", "is not a date"),
            ("/messages?state=deferred", "is not a message state"),
            ("/messages.csv?from=2026-02-30", "is not a date"),
        ):
            r = await c.get(path)
            assert r.status_code == 400 and words in _error(r.text), (path, r.status_code)
        r = await c.get("/messages/99999999999999999999999")
        assert r.status_code == 404
        r = await c.get("/premium?month=2026-11")
        assert r.status_code == 200


async def test_the_state_filter_offers_message_states_only(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/messages")).text
    offered = re.findall(r"<option(?: selected)?>(\w+)</option>", page)
    assert offered == [
        "queued",
        "hold",
        "submitted",
        "delivered",
        "failed",
        "expired",
        "cancelled",
        "unreported",
    ]


# ---- 17, 18: labels, and the operator's row seen by a company admin ---------------------------------


class _Fields(HTMLParser):
    """Form fields a screen reader cannot name: no <label> around them and no aria-label."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = 0
        self.unnamed: list[str] = []
        self.buttons: list[str] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.labels += 1
        elif tag in ("input", "select") and a.get("type") != "hidden":
            if not self.labels and not a.get("aria-label"):
                self.unnamed.append(f"{tag} {a.get('name')}")
        elif tag == "button":
            self._button = [a.get("aria-label") or ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.labels -= 1
        elif tag == "button" and self._button is not None:
            self.buttons.append("".join(self._button))
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None and not self._button[0]:
            self._button.append(data.strip())


async def test_every_field_has_a_label_and_row_buttons_say_what_they_do(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        for path in ("/users", "/account", "/operator/accounts", "/premium", "/messages"):
            fields = _Fields()
            fields.feed((await c.get(path)).text)
            assert not fields.unnamed, (path, fields.unnamed)
            sets = [b for b in fields.buttons if b == "Set"]
            assert not sets, (path, fields.buttons)
            assert len(set(fields.buttons)) == len(fields.buttons), (path, fields.buttons)


async def test_a_company_admin_sees_the_operators_role_as_text(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/users")).text
    row = re.search(rf'<tr data-email="{OPERATOR}">.*?</tr>', page, re.S)
    assert row is not None
    assert "<select" not in row.group(0) and "<form" not in row.group(0)
    assert '<span class="role">operator</span>' in row.group(0)


async def test_a_polish_offices_csv_is_split_by_semicolons_as_its_excel_reads_it(tmp_path: Path) -> None:
    # `[gateway] language = "pl"`: Excel under Polish regional settings splits a double-clicked CSV
    # at `;`; comma-separated, every row came up as one cell.
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    polish = web.config.gateway.model_copy(update={"language": "pl"})
    web.config = web.config.model_copy(update={"gateway": polish})
    try:
        await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601000007", "Cześć, jutro o 9"))
        async with as_user(web, ADMIN) as c:
            body = (await c.get("/messages.csv?number=601000007")).content
        assert body.startswith(b"\xef\xbb\xbfid;created;account;from;recipient;state;parts;reason")
        (row,) = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))[1:]
        assert row[4] == "+48601000007" and row[5] == "queued"
    finally:
        web.counts.close()
        store.close()


async def test_a_phones_opt_out_word_is_shown_as_any_strangers_text(web: WebContext) -> None:
    # The word is the phone's whole SMS: a U+202E made "STOP" read "POTS", and 900 "!" made the
    # table 5,788 px wide with every Remove button off the screen.
    store = web.store
    await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601999998", "hello"))
    word = "\u202eSTOP\u202c" + "!" * 900
    await store.write(lambda: store.policy.add_optout("+48601999998", word=word, source="mo"))
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/account?account=acme")).text
    listed = re.search(r'<table id="optouts">.*?</table>', page, re.S)
    assert listed is not None
    found = re.search(r"<td>\+48601999998</td><td>[^<]*</td><td>mo \(([^)]*)\)</td>", listed.group(0))
    assert found is not None, listed.group(0)
    cell = found.group(1)
    assert "\u202e" not in cell and "\\u202e" in cell and len(cell) <= 40, cell
