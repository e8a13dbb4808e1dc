"""Users: an account's logins, their roles, passwords and limits, and the rules a refused form follows.

Validation and messages follow the CLI (`smsgw user add|set|remove|passwd`), so that an admin gets
the same answer for the same mistake whichever way they ask. A user outside the admin's account
is answered like a missing one. `Invalid` and the field rules here are the panel's: its other forms
(accounts, services, the operator's) refuse the same way, through `gateway.web.pages` as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from acl.accounts import user_address_problem
from acl.passwords import hash_password, off_loop
from gateway.adminrules import (
    limit_value,
    mail_address_problem,
    no_password_note,
    password_problem,
)
from gateway.store.accounts import Conflict, NotFound, User
from gateway.web.cookies import cookie
from gateway.web.formtext import text
from gateway.web.initialpassword import INITIAL_PASSWORD_FILE, forget_replaced
from gateway.web.messages import BadQuery
from gateway.web.security import SESSION_COOKIE, Forbidden, NotYours, Who, after_post, guarded, notice
from gateway.web.sudo import (
    FIELD,
    SUDO_MINUTES,
    NeedsPassword,
    check_current_password,
    confirm_admin,
    needs_password,
)
from gateway.web.userlist import typed as typed_value
from gateway.web.userlist import user_page

# Roles by what they may do: a change up the list hands over more (sudo), down it takes away.
_RANK = {"user": 0, "admin": 1, "operator": 2}


class Invalid(ValueError):
    """A form value the CLI would refuse; shown to the admin, nothing changed. `field`: the form field
    at fault, marked on the page shown again (a screen reader says which); none for the whole form."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def parse_limit(value: str, what: str, field: str | None = None) -> int | None:
    """A limit field: empty is no limit, anything else the CLI's rule (ASCII digits, at most what
    SQLite holds: "²" passed isdigit and failed in int(), a huge number failed at the write)."""
    if not value.strip():
        return None
    try:
        return limit_value(what, value)
    except ValueError as exc:
        raise Invalid(str(exc), field) from exc


def confirmed(form: FormData, what: str) -> None:
    """A destructive button's form carries a required "confirm" box: checked here too, since a
    browser without HTML5 validation (or a replayed request) sends the form without it."""
    if text(form, "confirm") != "yes":
        raise Invalid(f"tick the box next to the button to confirm: {what}", "confirm")


def check_password(password: str) -> str:
    if (problem := password_problem(password)) is not None:
        raise Invalid(problem, "password")
    return password


def account_for(request: Request, who: Who, name: str | None) -> Any:
    """The account a page is about: the admin's own, or any the operator names (default: own)."""
    store = request.app.state.web.store
    if not name or not who.operator:
        return store.accounts.account_by_id(who.user.account_id)
    try:
        return store.accounts.get_account(name)
    except NotFound as exc:
        raise NotYours from exc


def user_in_scope(request: Request, who: Who, email: str) -> User:
    user = request.app.state.web.store.accounts.find_user(email)
    if user is None or not who.sees(user.account_id):
        raise NotYours
    return user


async def _users_page(
    request: Request,
    who: Who,
    error: str = "",
    done: str = "",
    status: int = 200,
    typed: Mapping[str, Any] | None = None,
    bad: str | tuple[str, ...] | None = None,
) -> Response:
    """`typed`: the refused form, shown again as the admin typed it (never its password), with the
    stamp of the limits it was loaded with (a limits form refused as stale: the limits now); `bad`:
    its field at fault, or the fields (a stale limits form's, those changed on both sides)."""
    from gateway.web.userlimits import limits_stamp  # it imports this module (through pages)

    web = request.app.state.web
    q = request.query_params
    acc = account_for(request, who, q.get("account"))
    # The page's own query (its account for the operator, the filter, where it starts): each row's
    # forms post back to it, so a save or a refusal shows this page again, not the first.
    here = {
        k: q[k]
        for k in ("account", "address", "after", "before")
        if q.get(k) and (k != "account" or who.operator)
    }
    listed: dict[str, str] = {k: v for k, v in here.items() if k not in ("after", "before")}
    try:
        sought, after, before = (typed_value(q.get(k), k) for k in ("address", "after", "before"))
    except BadQuery as exc:
        error, status, bad, here = str(exc), 400, exc.field[0], listed
        sought = after = before = None
    page = await web.counts.run(
        lambda conn: user_page(conn, acc.id, text=sought, after=after, before=before, names=who.operator)
    )
    again: dict[str, str] = {}
    if typed is not None:
        fields = ("action", "email", "monthly_limit", "daily_limit", "role", "loaded")
        again = {k: text(typed, k) for k in fields}
    ctx = {
        "who": who,
        "account": acc,
        "accounts": page.accounts,
        "users": page.users,
        "page": page,
        "here": "/users" + ("?" + urlencode(here) if here else ""),
        "listed": urlencode(listed),
        "address": sought or "",
        "stamps": {u.email: limits_stamp(u) for u in page.users},
        "typed": again,
        "sudo": needs_password(request, who),  # credential-making forms then ask for the admin's password
        "sudo_minutes": SUDO_MINUTES,
        "error": error,
        "bad": bad if isinstance(bad, tuple) else (bad,),
        "done": done or notice(request, who),
    }
    return web.render(request, "users.html", ctx, status)


@guarded()
async def users(request: Request, who: Who) -> Response:
    return await _users_page(request, who)


@guarded()
async def users_change(request: Request, who: Who, form: FormData) -> Response:
    """One POST for the user actions; `action` says which (each a button of its own form)."""
    from gateway.web.userlimits import StaleLimits, save_limits  # it imports this module (through pages)

    web = request.app.state.web
    accounts = web.store.accounts
    action = text(form, "action")
    email = text(form, "email").strip()
    try:
        if action == "add":
            acc = account_for(request, who, text(form, "account"))
            if (problem := user_address_problem(email)) is not None:
                raise Invalid(problem, "email")
            if (problem := mail_address_problem(web.config, email)) is not None:
                raise Invalid(f"the user's answers and notices go to that address: {problem}", "email")
            if not who.operator:
                from gateway.web.userdomains import within_account  # it imports this module (through pages)

                await within_account(web, acc.id, email)
            try:
                await web.change(who, acc.id, "user.add", email, lambda: accounts.add_user(email, acc.name))
            except Conflict:
                taken = accounts.find_user(email)
                if who.operator or (taken is not None and taken.account_id == acc.id):
                    raise
                # Whose it is stays unsaid: an admin learns nothing of other accounts' users.
                raise Invalid(f"{email} cannot be added; ask the operator", "email") from None
            done = f"user {email} added to account {acc.name}"
        else:
            user = user_in_scope(request, who, email)
            if user.role == "operator" and not who.operator:
                # The operator's login may sit in a client account; its admin must not be able to set
                # its password (and log in as the operator), remove it or change it otherwise.
                raise Forbidden("only an operator changes an operator's login")
            if action == "remove":
                if user.id == who.user.id:
                    raise Invalid("you cannot remove your own login")
                confirmed(form, f"remove user {email}")
                await web.change(
                    who, user.account_id, "user.remove", email, lambda: accounts.remove_user(email)
                )
                web.sessions.end_login(user.email)  # now, not at their next request
                done = f"user {email} removed"
                # As `smsgw user remove`: the first operator's password file goes with its login, else
                # kept until a start (for good with no operator left), readable in state_dir.
                if await off_loop(forget_replaced, web.config.state_dir, user.password_hash) is not None:
                    done += f" ({INITIAL_PASSWORD_FILE}, which held its password, is removed)"
            elif action == "limits":  # only what it changed, refused if changed meanwhile (409)
                done = await save_limits(web, who, user, form)
            elif action == "password":
                try:  # the message names the row: the page has a password field for every user
                    password = check_password(text(form, "password"))
                except Invalid as exc:
                    raise Invalid(f"new password for {email}: {exc}", exc.field) from exc
                if user.id == who.user.id:  # always, as it was: the window does not stand in for it
                    wrong = "your current password is not right: give it to set a new one"
                    await check_current_password(request, user, text(form, FIELD), wrong)
                    if who.session is not None:  # it is the admin's password too: no need to ask again
                        web.sessions.confirm(who.session)
                else:  # a password the acting admin chose lets them log in as `email`
                    await confirm_admin(request, who, form, f"setting the password of {email}")
                digest = await off_loop(hash_password, password)
                await web.change(
                    who,
                    user.account_id,
                    "user.password",
                    email,
                    lambda: accounts.set_user(email, password_hash=digest),
                )
                if user.id == who.user.id:  # the admin's own other sessions end, this one stays
                    web.sessions.keep(cookie(request, SESSION_COOKIE), digest)
                done = f"password set for {email}; log in on the submission port with this address"
                state_dir = web.config.state_dir
                if await off_loop(forget_replaced, state_dir, user.password_hash) is not None:
                    done += f" ({INITIAL_PASSWORD_FILE}, which held the password replaced, is removed)"
            elif action == "role":
                role = text(form, "role")
                if role not in ("user", "admin", "operator"):
                    raise Invalid(
                        f"role of {email}: unknown role {role!r}: one of user, admin, operator", "role"
                    )
                if (role == "operator" or user.role == "operator") and not who.operator:
                    raise Forbidden("only an operator grants or takes the operator role")
                if user.id == who.user.id:
                    raise Invalid("you cannot change your own role", "role")
                if _RANK[role] > _RANK[user.role]:  # a promotion; lowering a role makes no credential
                    await confirm_admin(request, who, form, f"making {email} {role}")
                await web.change(
                    who,
                    user.account_id,
                    "user.role",
                    f"{email} {role}",
                    lambda: accounts.set_user(email, role=role),
                )
                if role != user.role:  # its sessions end now; a role given back does not revive them
                    web.sessions.end_login(user.email)
                done = f"user {email} is now {role}"
                if note := no_password_note(role, user.password_hash):
                    done += f" (note: {note})"
            else:
                raise Invalid(f"unknown action {action!r}")
    except StaleLimits as exc:
        return await _users_page(request, who, error=str(exc), status=409, typed=exc.form, bad=exc.fields)
    except (Invalid, NeedsPassword, Conflict, NotFound) as exc:
        bad = "email" if action == "add" and isinstance(exc, Conflict) else getattr(exc, "field", None)
        return await _users_page(request, who, error=str(exc), status=400, typed=form, bad=bad)
    return after_post(request, who, done)


ROUTES = [
    Route("/users", users, methods=["GET"]),
    Route("/users", users_change, methods=["POST"]),
]
