"""The admin's own password before the panel makes or hands over a credential ("sudo mode").

A panel left open on a shared PC let whoever sat down add a login, set its password and make it an
admin: a login of their own that outlived the owner's logout and new password. Each test drives the
panel through its ASGI app with the store's clock injected, so that the 10-minute window is tested
without waiting; the seeded admins' password is `PASSWORD`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.web.app import WebContext
from gateway.web.userlimits import limits_stamp
from tests.test_web_sessions import Clock, panel
from tests.web_helpers import ADMIN, OPERATOR, PASSWORD, PLAIN, client, csrf_of, login

FIELD = 'aria-label="your password, to '  # each field names what it confirms
BACKDOOR = "backdoor@acme.example"
SUDO_MINUTES = 10  # as README says (`gateway.web.security.SUDO_MINUTES`)


@asynccontextmanager
async def admin_panel(
    tmp_path: Path, email: str = ADMIN
) -> AsyncIterator[tuple[WebContext, Clock, httpx.AsyncClient]]:
    async with panel(tmp_path) as (web, clock), client(web) as c:
        assert (await login(c, email)).status_code == 303
        yield web, clock, c


async def post(c: httpx.AsyncClient, path: str = "/users", **data: str) -> httpx.Response:
    token = csrf_of((await c.get(path)).text)
    return await c.post(path, data={"csrf": token, **data})


def error_of(html: str) -> str:
    m = re.search(r'<p class="error"[^>]* id="error">(.*?)</p>', html)
    return m.group(1) if m else ""


def role_of(web: WebContext, email: str) -> str:
    user = web.store.accounts.find_user(email)
    assert user is not None
    return user.role


async def test_the_shared_pc_backdoor_needs_the_owners_password(tmp_path: Path) -> None:
    # Three POSTs from the owner's open tab: the add still goes (a login with no
    # password and the user role is no credential), the password and the admin role do not.
    async with admin_panel(tmp_path) as (web, _clock, c):
        assert FIELD in (await c.get("/users")).text
        assert (await post(c, action="add", email=BACKDOOR)).status_code == 303
        r = await post(c, action="password", email=BACKDOOR, password="Sitter123!!x")
        assert r.status_code == 400 and "needs your own password" in error_of(r.text)
        assert FIELD in r.text
        r = await post(c, action="role", email=BACKDOOR, role="admin")
        assert r.status_code == 400 and f"making {BACKDOOR} admin needs your own password" in error_of(r.text)
        # The form comes back as typed: the role chosen stays chosen in the backdoor's row.
        row = r.text.split(f'data-email="{BACKDOOR}"')[1].split("</tr>")[0]
        assert "<option selected>admin</option>" in row
        r = await post(
            c, action="password", email=BACKDOOR, password="Sitter123!!x", current_password="guess 1234"
        )
        assert r.status_code == 400 and "your password is not right" in error_of(r.text)
        user = web.store.accounts.find_user(BACKDOOR)
        assert user is not None and user.password_hash is None and user.role == "user"
        assert web.repo.audit_log(None, 5)[0]["action"] == "user.add"  # nothing else happened


async def test_the_password_opens_a_ten_minute_window_kept_in_the_session(tmp_path: Path) -> None:
    async with admin_panel(tmp_path) as (web, clock, c):
        await post(c, action="add", email=BACKDOOR)
        r = await post(
            c, action="password", email=BACKDOOR, password="long enough pw", current_password=PASSWORD
        )
        assert r.status_code == 303, error_of(r.text)
        page = (await c.get("/users")).text
        assert FIELD not in page  # inside the window the forms do not ask
        assert (await post(c, action="role", email=BACKDOOR, role="admin")).status_code == 303
        assert role_of(web, BACKDOOR) == "admin"
        # Another login of the same admin (another browser) has a window of its own: none yet.
        async with client(web) as other:
            assert (await login(other, ADMIN)).status_code == 303
            assert FIELD in (await other.get("/users")).text
            r = await post(other, action="role", email=PLAIN, role="admin")
            assert r.status_code == 400 and role_of(web, PLAIN) == "user"
        # A page made inside the window and posted after it: refused, the field shown this time.
        stale = csrf_of(page)
        clock.advance(SUDO_MINUTES)
        data = {"csrf": stale, "action": "role", "email": PLAIN, "role": "admin"}
        r = await c.post("/users", data=data)
        assert r.status_code == 400 and "asked again after 10 minutes" in error_of(r.text)
        assert FIELD in r.text and role_of(web, PLAIN) == "user"
        r = await c.post("/users", data={**data, "current_password": PASSWORD})
        assert r.status_code == 303 and role_of(web, PLAIN) == "admin"


async def test_changes_that_make_no_credential_ask_for_nothing(tmp_path: Path) -> None:
    async with admin_panel(tmp_path) as (web, _clock, c):
        await post(c, action="add", email=BACKDOOR)
        user = web.store.accounts.find_user(PLAIN)
        assert user is not None
        r = await post(
            c, action="limits", email=PLAIN, monthly_limit="7", daily_limit="", loaded=limits_stamp(user)
        )
        assert r.status_code == 303, error_of(r.text)
        assert (
            web.store.accounts.get_account("acme")
            and (u := web.store.accounts.find_user(PLAIN))
            and u.monthly_limit == 7
        )
        assert (await post(c, action="role", email=PLAIN, role="user")).status_code == 303  # as it was
        assert (await post(c, action="remove", email=BACKDOOR, confirm="yes")).status_code == 303
        assert web.store.accounts.find_user(BACKDOOR) is None
        assert FIELD in (await c.get("/users")).text  # none of them opened the window


async def test_wrong_passwords_count_against_the_login_lockout(tmp_path: Path) -> None:
    async with admin_panel(tmp_path) as (web, _clock, c):
        for _ in range(3):
            r = await post(c, action="role", email=PLAIN, role="admin", current_password="not it at all")
            assert r.status_code == 400
        r = await post(c, action="role", email=PLAIN, role="admin", current_password=PASSWORD)
        assert r.status_code == 400 and "too many failed attempts" in error_of(r.text)
        assert role_of(web, PLAIN) == "user"
        async with client(web) as other:
            assert (await login(other, ADMIN)).status_code == 429


async def test_the_operator_needs_it_to_trust_relay_networks_for_a_new_account(tmp_path: Path) -> None:
    async with admin_panel(tmp_path, OPERATOR) as (web, _clock, c):
        assert FIELD in (await c.get("/operator/accounts")).text
        r = await post(c, "/operator/accounts", action="add", name="nets", networks="192.0.2.0/24")
        assert r.status_code == 400 and "relay networks" in error_of(r.text)
        assert 'value="192.0.2.0/24"' in r.text  # as typed
        assert "nets" not in {a.name for a in web.store.accounts.list_accounts()}
        assert (await post(c, "/operator/accounts", action="add", name="bare")).status_code == 303
        data = {"action": "add", "name": "nets", "networks": "192.0.2.0/24", "current_password": PASSWORD}
        assert (await post(c, "/operator/accounts", **data)).status_code == 303
        assert web.store.accounts.get_account("nets").networks == ("192.0.2.0/24",)
        # The window is the operator's for the users pages too: an operator's role given without asking.
        assert (
            await post(c, "/users?account=acme", action="role", email=PLAIN, role="operator")
        ).status_code == 303
        assert role_of(web, PLAIN) == "operator"


async def test_ones_own_new_password_still_needs_the_current_one_and_opens_the_window(tmp_path: Path) -> None:
    async with admin_panel(tmp_path) as (_web, clock, c):
        r = await post(c, action="password", email=ADMIN, password="another pw 123")  # no current one
        assert r.status_code == 400 and "give your current password" in error_of(r.text)
        r = await post(
            c, action="password", email=ADMIN, password="another pw 123", current_password=PASSWORD
        )
        assert r.status_code == 303
        assert FIELD not in (await c.get("/users")).text
        clock.advance(SUDO_MINUTES + 1)
        assert FIELD in (await c.get("/users")).text


def role_form(html: str, email: str) -> str:
    """The role form of `email`'s row on /users."""
    row = re.search(rf'<tr data-email="{re.escape(email)}">(.*?)</tr>', html, re.S)
    assert row is not None, email
    form = re.search(r'<form[^>]*>(?:(?!</form>).)*name="action" value="role".*?</form>', row.group(1), re.S)
    assert form is not None, row.group(1)
    return form.group(0)


async def test_the_role_form_asks_for_the_password_only_where_it_can_promote(tmp_path: Path) -> None:
    # Lowering a role needs no password, and an admin's form for another admin can only lower it
    # (an admin grants no operator role), so its password field was asked for nothing: the admin took
    # it that demoting needed it too. Where a promotion is possible the field stays.
    async with panel(tmp_path) as (web, _clock):
        accounts = web.store.accounts
        await web.store.write(lambda: accounts.add_user("second@acme.example", "acme"))
        await web.store.write(lambda: accounts.set_user("second@acme.example", role="admin"))
        async with client(web) as c:
            assert (await login(c, ADMIN)).status_code == 303
            page = (await c.get("/users")).text
            assert 'name="current_password"' in role_form(page, PLAIN)  # user -> admin needs it
            assert 'name="current_password"' not in role_form(page, "second@acme.example")
            r = await post(c, action="role", email="second@acme.example", role="user")
            assert r.status_code == 303 and role_of(web, "second@acme.example") == "user"
        async with client(web) as c:  # the operator can still make an admin an operator: asked
            assert (await login(c, OPERATOR)).status_code == 303
            page = (await c.get("/users?account=acme")).text
            assert 'name="current_password"' in role_form(page, ADMIN)


async def test_an_operator_lowers_another_operator_to_admin_without_the_password(tmp_path: Path) -> None:
    # The row of an operator shows no password field (it can only be lowered), but the handler
    # asked for one for any change to admin: operator -> admin was refused, and the form shown
    # again still had no field, so it could never go through.
    async with panel(tmp_path) as (web, _clock):
        accounts = web.store.accounts
        await web.store.write(lambda: accounts.add_user("op2@acme.example", "acme"))
        await web.store.write(lambda: accounts.set_user("op2@acme.example", role="operator"))
        async with client(web) as c:
            assert (await login(c, OPERATOR)).status_code == 303
            page = (await c.get("/users?account=acme")).text
            assert 'name="current_password"' not in role_form(page, "op2@acme.example")
            r = await post(c, "/users?account=acme", action="role", email="op2@acme.example", role="admin")
            assert r.status_code == 303, error_of(r.text)
            assert role_of(web, "op2@acme.example") == "admin"
            # Up again is a promotion: asked.
            r = await post(c, "/users?account=acme", action="role", email="op2@acme.example", role="operator")
            assert r.status_code == 400 and "needs your own password" in error_of(r.text)
