"""Conversations (two-way replies) and premium services, through the same repositories as their CLIs.

A company admin sees the conversations of their own account's users and their own account's
premium services with that month's figures; the operator sees every one, the MOs, and adds
services. Adding a premium service is the operator's: a password (KPxxx) is shared by every
account and takes money, so claiming one is part of the operator's contract with the client,
just as `smsgw premium add` runs on the gateway host.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cli.common import CliError
from gateway.conversations.repo import ConversationsRepo
from gateway.premium import cli as premium_cli
from gateway.premium import handlers
from gateway.store.accounts import NotFound
from gateway.web.pages import Invalid
from gateway.web.security import Forbidden, Who, guarded

SHOWN = 100


@guarded()
async def conversations(request: Request, who: Who) -> Response:
    web = request.app.state.web
    repo = ConversationsRepo(web.store.db, web.store.clock)
    if who.operator:
        rows = repo.list_conversations(user=None, number=None, limit=SHOWN)
        mo = repo.list_mo(since=None, number=None, limit=SHOWN)
    else:  # by the account's users, and only rows carrying the account: a moved user's old ones stay behind
        rows = [
            c
            for u in web.store.accounts.list_users(who.user.account)
            for c in repo.list_conversations(user=u.email, number=None, limit=SHOWN)
            if c.account_id == who.user.account_id
        ]
        rows = sorted(rows, key=lambda c: c.last_mt_at, reverse=True)[:SHOWN]
        mo = []
    return web.render(request, "conversations.html", {"who": who, "rows": rows, "mo": mo})


def pln(grosze: int | None) -> str:
    grosze = grosze or 0
    return f"{grosze // 100}.{grosze % 100:02d}"


def _month(request: Request) -> tuple[str, float, float]:
    web = request.app.state.web
    tz = ZoneInfo(web.config.gateway.timezone)
    text = request.query_params.get("month", "")
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=tz)
    except ValueError:
        start = datetime.fromtimestamp(web.store.clock(), tz).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return f"{start:%Y-%m}", start.timestamp(), end.timestamp()


async def _premium_page(
    request: Request, who: Who, error: str = "", done: str = "", status: int = 200
) -> Response:
    web = request.app.state.web
    repo = handlers.repo(web.store)
    accounts = web.store.accounts
    month, start, end = _month(request)
    services = [s for s in repo.services() if who.sees(s.account_id)]
    mine = {s.password for s in services}
    figures = [
        {
            "service": pw or "(none)",
            "number": number,
            "mos": n,
            "parts": parts,
            "price": pln(price),
            "commission": pln(commission),
        }
        for pw, number, n, parts, price, commission in repo.stats(start, end, who.scope)
        if pw in mine or (pw is None and who.operator)
    ]
    listed = [
        {
            "s": s,
            "account": accounts.account_by_id(s.account_id).name,
            "acl": repo.acl(s.id),
            "kept": 0 if s.verified_at else repo.count_awaiting(s.id),
        }
        for s in services
    ]
    ctx = {
        "who": who,
        "services": listed,
        "figures": figures,
        "month": month,
        "numbers": list(web.config.premium.tariffs),
        "accounts": accounts.list_accounts() if who.operator else [],
        "error": error,
        "done": done,
    }
    return web.render(request, "premium.html", ctx, status)


@guarded()
async def premium(request: Request, who: Who) -> Response:
    return await _premium_page(request, who)


@guarded()
async def premium_add(request: Request, who: Who, form: FormData) -> Response:
    """`smsgw premium add` from a form: the CLI's own checks, and its confirmation mail."""
    if not who.operator:
        raise Forbidden("only the operator adds a premium service (the passwords are shared)")
    web = request.app.state.web
    store, cfg = web.store, web.config
    repo = handlers.repo(store)
    try:
        password = premium_cli._password(str(form.get("password", "")))
        email = premium_cli._email(str(form.get("email", "")))
        given = str(form.get("reply_acl", "")).replace(",", " ").split()
        acl = [premium_cli._email(a, "--reply-acl") for a in given] or [email]
        numbers = premium_cli._numbers(cfg, [str(n) for n in form.getlist("number") if n])
        account = store.accounts.get_account(str(form.get("account", "")).strip())
        if repo.active_service(password) is not None:
            raise Invalid(f"password {password} is taken (passwords are unique, whatever the case)")

        def add() -> str:
            service = repo.service(repo.add_service(password, account.id, email, numbers, acl))
            return handlers.ask_verification(store, cfg, service, account.name)

        detail = f"{password} {account.name} {email}"
        confirm = await web.change(who, account.id, "premium.add", detail, add)
    except (CliError, Invalid, NotFound) as exc:
        return await _premium_page(request, who, error=str(exc), status=400)
    done = (
        f"premium service {password} added for account {account.name}, numbers {' '.join(numbers) or 'all'};"
        f" a confirmation was mailed to {email}; SMS are kept until it answers (or mails {confirm})"
    )
    return await _premium_page(request, who, done=done)


ROUTES: list[Any] = [
    Route("/conversations", conversations, methods=["GET"]),
    Route("/premium", premium, methods=["GET"]),
    Route("/premium", premium_add, methods=["POST"]),
]
