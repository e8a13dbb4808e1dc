"""The rules the panel and the CLI share, where a company admin's input was unbounded or its refusal
unclear: billing addresses, limits and page positions typed with thousands of digits, passwords.

The panel through an ASGI client on the seeded store of acme and rival; the CLI through its entry
point on a real SQLite file (the `cli` fixture)."""

from __future__ import annotations

from typing import Any

from gateway.adminrules import BILLING_ADDRESSES_MAX
from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, as_user, csrf_of
from tests.web_helpers import web as web  # the fixture

SETTINGS = {"split_mode": "concatenated", "dlr_mail": "none", "overflow": "truncate"}


def books(n: int) -> str:
    return " ".join(f"books{i}@acme.example" for i in range(n))


async def test_an_account_is_given_at_most_ten_billing_addresses_in_the_panel(web: WebContext) -> None:
    acme = web.store.accounts.get_account("acme")
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        r = await c.post("/account", data={**SETTINGS, "csrf": token, "billing_to": books(11)})
        assert r.status_code == 400
        assert f"11 billing addresses given; an account has at most {BILLING_ADDRESSES_MAX}" in r.text
        assert web.store.accounts.billing_addresses(acme.id) == []
        # Counted before any address is checked: a list of thousands is refused by its count alone.
        many = books(2000)  # under the body cap, which refuses a bigger form first
        r = await c.post("/account", data={**SETTINGS, "csrf": token, "billing_to": many})
        assert r.status_code == 400 and "2000 billing addresses given" in r.text
        # The same address in other cases is one mailbox.
        same = books(10) + " BOOKS0@acme.example"
        r = await c.post("/account", data={**SETTINGS, "csrf": token, "billing_to": same})
        assert r.status_code == 200, r.text
        assert len(web.store.accounts.billing_addresses(acme.id)) == 10


def test_the_cli_gives_an_account_at_most_ten_billing_addresses(cli: Any) -> None:
    assert cli("account", "add", "acme")[0] == 0
    many = [arg for i in range(11) for arg in ("--billing-to", f"b{i}@acme.example")]
    code, _, err = cli("account", "set", "acme", *many)
    assert code == 2 and "--billing-to: 11 billing addresses given; an account has at most 10" in err
    code, out, _ = cli("account", "show", "acme")
    assert "billing-to: none" in out
    assert cli("account", "set", "acme", *many[:20])[0] == 0


LONG = "9" * 5000  # past int()'s 4,300 digits


async def test_a_number_typed_with_thousands_of_digits_is_refused_in_the_rules_words(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        r = await c.get(f"/account?optouts_before={LONG}")
        assert r.status_code == 400 and "is not a position in the opt-out list" in r.text
        for path in (f"/messages/{LONG}", f"/messages/{'9' * 19}"):
            assert (await c.get(path)).status_code == 404, path
        token = csrf_of((await c.get("/users")).text)
        data = {"csrf": token, "action": "limits", "email": ADMIN, "monthly_limit": LONG}
        r = await c.post("/users", data=data)
        assert r.status_code == 400 and "give a number of SMS parts from 0 to" in r.text
        assert "Exceeds the limit" not in r.text and len(r.text) < 20_000
