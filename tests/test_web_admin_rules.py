"""The rules the panel and the CLI share, where a company admin's input was unbounded or its refusal
unclear: billing addresses, limits and page positions typed with thousands of digits, passwords.

The panel through an ASGI client on the seeded store of acme and rival; the CLI through its entry
point on a real SQLite file (the `cli` fixture)."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

from acl.lockout import AuthGuard
from gateway.adminrules import BILLING_ADDRESSES_MAX
from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, PASSWORD, PLAIN, as_user, client, csrf_of, login
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
        assert r.status_code == 303, r.text
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
        assert r.status_code == 400 and "too large for a limit; give a whole number of SMS parts" in r.text
        assert "Exceeds the limit" not in r.text and len(r.text) < 20_000


async def test_your_own_new_password_needs_the_current_one(web: WebContext) -> None:
    # A panel left open on a shared PC gave whoever sat down the owner's panel and submission login.
    before = web.store.accounts.find_user(ADMIN).password_hash  # type: ignore[union-attr]
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        assert 'name="current_password"' in (await c.get("/users")).text
        data = {"csrf": token, "action": "password", "email": ADMIN, "password": "taken over 123"}
        # An empty field (a password manager that left it blank) is refused and is no guess: five of
        # them locked the login out, its mail program's submission at that address too.
        for _ in range(5):
            r = await c.post("/users", data={**data, "current_password": ""})
            assert r.status_code == 400 and "give your current password: the field was empty" in r.text
        for current in ("not my password", "nor this one", "nor that"):
            r = await c.post("/users", data={**data, "current_password": current})
            assert r.status_code == 400 and "your current password is not right" in r.text, current
        assert web.store.accounts.find_user(ADMIN).password_hash == before  # type: ignore[union-attr]
        # The guesses count against the login's lockout (3 failures in the tests' guard).
        r = await c.post("/users", data={**data, "current_password": PASSWORD})
        assert r.status_code == 400 and "too many failed attempts" in r.text
    web.guard = AuthGuard(3, 300)  # a fresh lockout: the right password now sets the new one
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        data = {"csrf": token, "action": "password", "email": ADMIN, "password": "a new one 123"}
        r = await c.post("/users", data={**data, "current_password": PASSWORD}, follow_redirects=True)
        assert r.status_code == 200 and "password set for" in r.text
        # Another user's password is still the admin's to set without theirs.
        data = {"csrf": token, "action": "password", "email": PLAIN, "password": "for anna 1234"}
        assert (await c.post("/users", data=data)).status_code == 303


async def test_a_password_of_spaces_only_is_refused(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        data = {"csrf": token, "action": "password", "email": PLAIN, "password": " " * 8}
        r = await c.post("/users", data=data)
        assert r.status_code == 400 and "a password of spaces only is refused" in r.text


def test_the_cli_refuses_a_password_of_spaces_only(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("account", "add", "acme")[0] == 0
    assert cli("user", "add", "carol@acme.example", "--account", "acme")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(" " * 8 + "\n"))  # as `echo ... | smsgw user passwd`
    code, _, err = cli("user", "passwd", "carol@acme.example")
    assert code == 2 and "a password of spaces only is refused" in err


INVISIBLE = "\u200b" * 12  # zero-width spaces (Cf): not whitespace to str.strip()
HIDDEN = "\u200b\u2060\u00a0\u3000\u2028\x7f\u200e\ufeff"  # one of each kind: Cf, Zs, Zl, Cc
# Hangul fillers (Lo), the braille blank (So), lone combining marks: the grapheme joiner and a
# variation selector (Mn), an enclosing circle (Me).
BLANK = "\u3164\uffa0\u115f\u1160\u2800\u034f\ufe0f\u20dd"


@pytest.mark.parametrize("password", [INVISIBLE, HIDDEN, BLANK, "\u3164" * 12, "\u2800" * 12])
async def test_a_password_of_invisible_characters_only_is_refused(web: WebContext, password: str) -> None:
    before = web.store.accounts.find_user(PLAIN).password_hash
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        data = {"csrf": token, "action": "password", "email": PLAIN, "password": password}
        r = await c.post("/users", data=data)
        assert r.status_code == 400 and "a password of invisible characters only" in r.text
        # One visible character among them is a password like any other.
        data.update(password=password + "x", current_password=PASSWORD)  # setting another's asks for it
        assert (await c.post("/users", data=data)).status_code == 303
    assert web.store.accounts.find_user(PLAIN).password_hash != before


def test_the_cli_refuses_a_password_of_invisible_characters_only(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("account", "add", "acme")[0] == 0
    assert cli("user", "add", "carol@acme.example", "--account", "acme")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(INVISIBLE + "\n"))
    code, _, err = cli("user", "passwd", "carol@acme.example")
    assert code == 2 and "a password of invisible characters only" in err and "nothing changed" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO(INVISIBLE + "ok\n"))
    assert cli("user", "passwd", "carol@acme.example")[0] == 0


async def test_a_new_admin_without_a_password_is_told_to_get_one(web: WebContext, cli: Any) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        data = {"csrf": token, "action": "role", "email": "carl@rival.example", "role": "admin"}
        data["current_password"] = PASSWORD  # making an admin needs the acting admin's own
        # anna has a password
        r = await c.post("/users", data={**data, "email": PLAIN}, follow_redirects=True)
        assert r.status_code == 200 and "no password yet" not in r.text
    await web.store.write(lambda: web.store.accounts.add_user("newbie@acme.example", "acme"))
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        data = {"csrf": token, "action": "role", "email": "newbie@acme.example", "role": "admin"}
        data["current_password"] = PASSWORD
        r = await c.post("/users", data=data, follow_redirects=True)
        assert r.status_code == 200 and "no password yet: they cannot log in until one is set" in r.text
    assert cli("account", "add", "acme")[0] == 0
    assert cli("user", "add", "dan@acme.example", "--account", "acme")[0] == 0
    code, out, _ = cli("user", "set", "dan@acme.example", "--role", "admin")
    assert code == 0 and any(line.startswith("note: no password yet: they cannot log in") for line in out)


async def test_unknown_pages_and_methods_get_the_panels_error_page(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        for path, code in (("/no-such-page", 404), ("/messages/-1", 404), ("/logout", 405)):
            r = await c.get(path)
            assert r.status_code == code, path
            assert r.headers["content-type"].startswith("text/html") and 'href="/"' in r.text, path
        assert "POST" in (await c.get("/logout")).headers["allow"]


async def test_a_refused_login_says_who_sets_a_forgotten_password(web: WebContext) -> None:
    async with client(web) as c:
        r = await login(c, ADMIN, "not the password")
        assert r.status_code == 401
        assert "Your company&#39;s admin (or the gateway&#39;s operator) sets a new one" in r.text


async def test_a_login_form_opened_in_another_tab_still_logs_in(web: WebContext) -> None:
    async with client(web) as c:
        first = csrf_of((await c.get("/login")).text)
        await c.get("/login")  # a second tab, same browser
        data = {"email": ADMIN, "password": PASSWORD, "csrf": first}
        assert (await c.post("/login", data=data)).status_code == 303
