# ruff: noqa: F811  (the tests take test_web_admin_day's `web` fixture, imported by name)
"""What a company admin and the operator set on an account in the panel: limit fields taking the CLI's
rule (zero shown as zero), opt-outs an admin or the operator adds and whose list they land on, the
sender only the operator sets, users of the admin's own domains, and a refused form keeping what was
typed. Through the real app on a real SQLite file, as in test_web_admin_day.py; split from it by
subject (it was over 400 lines)."""

from __future__ import annotations

import re

from gateway.web.app import WebContext
from tests.test_web_admin_day import (
    SETTINGS,
    _error,
    web,  # noqa: F401  (the fixture)
)
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    OTHER_ADMIN,
    add_mail,
    as_user,
    csrf_of,
)

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


async def test_the_panel_takes_a_spaced_sender_number_in_digits_as_the_cli_does(web: WebContext) -> None:
    # `account add/set --sender "+48 500 100 200"` is +48500100200; the panel refused it: "write it in
    # digits only".
    accounts = web.store.accounts
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/account", params={"account": "rival"})).text
        data = {**SETTINGS, "csrf": csrf_of(page), "sender": "+48 500 100 200"}
        r = await c.post("/account", params={"account": "rival"}, data=data, follow_redirects=True)
        assert r.status_code == 200 and "account rival updated" in r.text, r.text
        token = csrf_of((await c.get("/operator/accounts")).text)
        data = {"csrf": token, "action": "add", "name": "lodz", "sender": "+48-500-100-201"}
        r = await c.post("/operator/accounts", data=data)
        assert r.status_code == 303, _error(r.text)
    assert accounts.get_account("rival").sender == "+48500100200"
    assert accounts.get_account("lodz").sender == "+48500100201"
