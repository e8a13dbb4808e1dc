"""Conversations (two-way replies) and premium services, through the same repositories as their CLIs.

A company admin sees the conversations of their own account's users, the SMS their phones answered
with, and their own account's premium services with that month's figures; the operator sees every
one, every MO (those matched to nobody too), and adds services. Adding a premium service is the
operator's: a password (KPxxx) is shared by every account and takes money, so claiming one is part
of the operator's contract with the client, just as `smsgw premium add` runs on the gateway host.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing_reports.monthly import Month
from billing_reports.render import pln
from gateway.cli.common import CliError
from gateway.conversations import states
from gateway.conversations.repo import ConversationsRepo
from gateway.conversations.rows import Conversation
from gateway.premium import cli as premium_cli
from gateway.premium import confirmation, handlers
from gateway.premium.stats import Figures, PremiumStats
from gateway.store.accounts import NotFound
from gateway.web.pages import Invalid
from gateway.web.repo import account_answers
from gateway.web.security import Forbidden, Who, after_post, guarded, notice

SHOWN = 100


@guarded()
async def conversations(request: Request, who: Who) -> Response:
    web = request.app.state.web
    repo = ConversationsRepo(web.store.db, web.store.clock)
    if who.operator:
        rows = repo.list_conversations(user=None, numbers=None, limit=SHOWN)
        mo = repo.list_mo(since=None, numbers=None, limit=SHOWN)
    else:  # the account's: a user moved to another account leaves those of their time here behind
        account = who.user.account_id
        rows = repo.list_conversations(user=None, numbers=None, limit=SHOWN, account_id=account)
        # The answers to its users' SMS: the page showed whom the account wrote to, never what came back.
        mo = account_answers(web.store.db.conn, account, SHOWN)
    # Whether each still carries its phone's answers to its user, and where they go if its user is
    # gone: a scan of the phone's SMS per row, on the reader thread (a phone with thousands of SMS
    # makes it tens of milliseconds a row).
    own = {a.id: a.reply_window_days for a in web.store.accounts.list_accounts()}
    now = web.store.clock()
    fallback = web.config.replies.fallback_address

    def read(conn: sqlite3.Connection) -> list[tuple[Conversation, str]]:
        found = states.listed(web.config, conn, rows, own, now)
        return [
            (c, states.told(state, c, conn, fallback, operator=who.operator))
            for c, state in zip(rows, found, strict=True)
        ]

    shown = await web.counts.run(read)
    return web.render(request, "conversations.html", {"who": who, "rows": shown, "mo": mo})


def _month(request: Request) -> tuple[str, float, float]:
    """The month asked for (this month when none is), in the installation's zone; anything but a
    YYYY-MM the billing takes is refused rather than quietly shown as this month."""
    web = request.app.state.web
    text = request.query_params.get("month", "").strip()
    if not text:
        month = Month.containing(web.store.clock(), web.tz)
    else:
        try:
            month = Month.parse(text, option="month")
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    start, end = month.bounds(web.tz)
    return str(month), start, end


def _typed(form: FormData | None) -> dict[str, Any]:
    """A refused new service, shown again as the operator typed it."""
    if form is None:
        return {"numbers": []}
    typed: dict[str, Any] = {k: str(form.get(k, "")) for k in ("password", "account", "email", "reply_acl")}
    typed["numbers"] = [str(n) for n in form.getlist("number")]
    return typed


def _figure(f: Figures, *, correction: bool) -> dict[str, Any]:
    return {
        "service": (f.password or "(none)") + (" (removed)" if f.removed else ""),
        "number": f.number,
        "mos": f.sms,
        "parts": f.parts,
        "price": pln(f.price),
        "commission": pln(f.commission),
        "correction": correction,
    }


async def _premium_page(
    request: Request,
    who: Who,
    error: str = "",
    done: str = "",
    status: int = 200,
    typed: FormData | None = None,
) -> Response:
    web = request.app.state.web
    repo = handlers.repo(web.store)
    accounts = web.store.accounts
    try:
        month, start, end = _month(request)
    except Invalid as exc:
        error, status = str(exc), 400
        month, start, end = "", 0.0, 0.0  # no figures: the month asked for has none
    services = [s for s in repo.services() if who.sees(s.account_id)]
    # Every MO of the month in the scope, by the service it was taken for: the money of a removed
    # service stays (billing has it), and a password given to another account later hides nothing.
    stats = PremiumStats(web.store.db, web.store.clock)
    traffic = stats.traffic(start, end, who.scope) if month else []
    # And the corrections booked in the month, by the account each side was booked for, as the
    # month's billing file lists them: its totals are the page's.
    moved = stats.moved(start, end, who.scope) if month else []
    figures = [_figure(f, correction=False) for f in traffic] + [_figure(f, correction=True) for f in moved]
    counts = [(f.sms, f.parts, f.price, f.commission) for f in traffic + moved]
    total = [sum(c[i] for c in counts) for i in range(4)]
    corrections = stats.corrections(start, end, who.scope, limit=SHOWN) if moved else []
    now, shown = web.store.clock(), web.env.filters["when"]
    listed = []
    for s in services:
        kept = 0 if s.verified_at else repo.count_awaiting(s.id)
        # Why it waits: a confirmation the relay refused, or one expired, is nobody's to answer.
        waits = None if s.verified_at else confirmation.unconfirmed(web.store.db.conn, s, kept, now)
        listed.append(
            {
                "s": s,
                "account": accounts.account_by_id(s.account_id).name,
                "acl": repo.acl(s.id),
                "kept": kept,
                "stuck": waits is not None and (waits.refused is not None or waits.expired_at is not None),
                "why": waits.why(shown) if waits else "",
                "todo": waits.todo(who.operator, quote="") if waits else "",
            }
        )
    ctx = {
        "who": who,
        "services": listed,
        "figures": figures,
        "total": {"mos": total[0], "parts": total[1], "price": pln(total[2]), "commission": pln(total[3])},
        "corrections": [
            {"c": c, "price": pln(c.price), "commission": pln(c.commission)} for c in corrections
        ],
        "more_corrections": len(corrections) == SHOWN,
        "month": month or request.query_params.get("month", ""),
        "numbers": list(web.config.premium.tariffs),
        "accounts": accounts.list_accounts() if who.operator else [],
        "typed": _typed(typed),
        "error": error,
        "done": done or notice(request, who),
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
        # The CLI's rules, in the form's words (its messages name --email, --number).
        email = premium_cli._email(cfg, str(form.get("email", "")), "mail address")
        given = str(form.get("reply_acl", "")).replace(",", " ").split()
        acl = [premium_cli._email(cfg, a, "answering address") for a in given] or [email]
        ticked = [str(n) for n in form.getlist("number") if n]
        configured = list(cfg.premium.tariffs)
        for n in ticked:
            if configured and n not in configured:
                raise Invalid(f"number {n} is not a configured premium number ({', '.join(configured)})")
        numbers = premium_cli._numbers(cfg, ticked)
        name = str(form.get("account", "")).strip()
        try:
            account = store.accounts.get_account(name)
        except NotFound:
            raise Invalid(store.accounts.no_account(name)) from None
        if repo.active_service(password) is not None:
            raise Invalid(f"password {password} is taken (passwords are unique, whatever the case)")

        def add() -> str:
            service = repo.service(repo.add_service(password, account.id, email, numbers, acl))
            return handlers.ask_verification(store, cfg, service, account.name)

        detail = f"{password} {account.name} {email}"
        confirm = await web.change(who, account.id, "premium.add", detail, add)
    except (CliError, Invalid, NotFound) as exc:
        return await _premium_page(request, who, error=str(exc), status=400, typed=form)
    done = (
        f"premium service {password} added for account {account.name}, numbers {' '.join(numbers) or 'all'};"
        f" a confirmation was mailed to {email}; SMS are kept until it answers (or mails {confirm})"
    )
    return after_post(request, who, done)


ROUTES: list[Any] = [
    Route("/conversations", conversations, methods=["GET"]),
    Route("/premium", premium, methods=["GET"]),
    Route("/premium", premium_add, methods=["POST"]),
]
