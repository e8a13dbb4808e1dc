"""Conversations (two-way replies) and premium services, through the same repositories as their CLIs.

A company admin sees the conversations of their own account's users, the SMS their phones answered
with, and their own account's premium services with that month's figures; the operator sees every
one, every MO (those matched to nobody too), and adds services. Adding a premium service is the
operator's: a password (KPxxx) is shared by every account and takes money, so claiming one is part
of the operator's contract with the client, just as `smsgw premium add` runs on the gateway host.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing_reports.monthly import Month
from billing_reports.render import pln
from gateway.cli.common import CliError
from gateway.conversations import inbound, states
from gateway.conversations.cli import being_sent_to, mail_waiting
from gateway.conversations.queries import account_answers, conversations_page
from gateway.conversations.repo import ConversationsRepo
from gateway.conversations.rows import Conversation
from gateway.premium import cli as premium_cli
from gateway.premium import handlers
from gateway.premium.stats import Figures
from gateway.store.accounts import NotFound
from gateway.web import premiumgone, premiumread
from gateway.web.formtext import text, texts
from gateway.web.messages import BadQuery, parsed_before
from gateway.web.pages import Invalid
from gateway.web.security import Forbidden, Who, after_post, guarded, notice

SHOWN = 100
TIME = re.compile(r"[0-9]{1,12}(\.[0-9]{1,17})?")  # a `last_mt_at` as repr() writes a timestamp


def _cursor(
    value: str, what: str = "a position in the conversations", name: str = "before"
) -> tuple[float, int] | None:
    """Where the next page starts: `last_mt_at` and id of the last conversation shown (an answer's
    `received_at` and id for the answers list, whose times are shared too: one mail answered by many).

    The list is in `last_mt_at` order, which many conversations share (one mail to many phones), so
    the id breaks the ties; and the time is carried, not looked up by the id, because a conversation
    written to since moves to the top: paging from its new place would show the first pages again."""
    if not value:
        return None
    at, _, given = value.partition("_")
    rowid = parsed_before(given, what) if given else None
    if not TIME.fullmatch(at) or rowid is None:
        raise BadQuery(f"{name}: {value[:40]!r} is not {what}")
    return float(at), rowid


def _received_from(value: str, operator: bool) -> tuple[float, int] | None:
    """Where a page of the SMS received starts (`mo_before`): the operator's list goes by MO id (the
    time is then 0 and unused), an account's answers by (`received_at`, id) as index mo_billing is
    ordered. Either is one index range however deep, as the conversations' pages are."""
    if not operator:
        return _cursor(value, "a position in the answers", "mo_before")
    try:
        rowid = parsed_before(value, "a position in the SMS received")
    except BadQuery:
        raise BadQuery(f"mo_before: {value[:40]!r} is not a position in the SMS received") from None
    return None if rowid is None else (0.0, rowid)


def _phone(request: Request) -> str | None:
    """The phone searched for, in E.164 as conversations keep it; BadQuery for what is no number."""
    from gateway.smtp.addressing import BadNumber, to_e164

    typed = (request.query_params.get("phone") or "").strip()
    if not typed:
        return None
    try:
        return to_e164(typed, request.app.state.web.config.gateway.default_region)
    except BadNumber as exc:
        raise BadQuery(f"phone: {typed[:40]!r} is not a phone number: {exc}") from None


# The operator's command in `mail_waiting`'s words for a mail given up as most likely arrived.
_RETRY = re.compile(r"; `smsgw outbox retry [0-9]+`$")


def _with_mail(row: dict[str, Any], sending: set[str], *, operator: bool = True) -> dict[str, Any]:
    """An MO's row with what became of its mail where `mailed` alone would mislead (`mo list`'s words).

    A company admin reads the same of their own answers' mails (the page said "mailed to dave@…"
    while the relay answered 451 and the operator's list said it was not taken yet), but not the
    operator's command to send one again: they ask the operator to."""
    waiting = mail_waiting(row, behind=row["mail_to"] in sending)
    if waiting is None:
        return row
    if not operator:
        waiting = _RETRY.sub("; the gateway's operator can send it again", waiting)
    return {**row, "note": f"{row['note']}; {waiting}" if row["note"] else waiting}


@guarded()
async def conversations(request: Request, who: Who) -> Response:
    web = request.app.state.web
    repo = ConversationsRepo(web.store.db, web.store.clock)

    def received(start: tuple[float, int] | None) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the SMS received, and where the next one starts (None: this is the last)."""
        if who.operator:
            mo = repo.list_mo(since=None, numbers=None, limit=SHOWN + 1, before=start[1] if start else None)
            sending = being_sent_to(repo)
            mo = [_with_mail(m, sending) for m in mo]
        else:  # the account's: a user moved to another account leaves those of their time here behind
            # The answers to its users' SMS: the page showed whom the account wrote to, never what came back.
            mo = account_answers(web.store.db.conn, who.user.account_id, SHOWN + 1, before=start)
            # Each note as the company reads it (`inbound.told`): raw, it said which former user of
            # theirs another company has now.
            mo = [{**m, "note": inbound.told(m["note"]) if m["note"] else m["note"]} for m in mo]
            sending = being_sent_to(repo) if any(m["mail_state"] == "queued" for m in mo) else set()
            mo = [_with_mail(m, sending, operator=False) for m in mo]
        last = mo[SHOWN - 1] if len(mo) > SHOWN else None
        if last is None:
            return mo, None
        return mo[:SHOWN], str(last["id"]) if who.operator else f"{last['received_at']!r}_{last['id']}"

    ctx: dict[str, Any] = {"who": who, "rows": [], "q": request.query_params}
    try:
        phone, before = _phone(request), _cursor(request.query_params.get("before", ""))
        mo_before = _received_from(request.query_params.get("mo_before", ""), who.operator)
    except BadQuery as exc:
        mo, _ = received(None)
        return web.render(
            request, "conversations.html", {**ctx, "mo": mo, "error": str(exc), "bad": exc.field}, 400
        )
    ctx["mo"], mo_next = received(mo_before)
    # Whether each still carries its phone's answers to its user, and where they go if its user is
    # gone: a scan of the phone's SMS per row, on the reader thread (a phone with thousands of SMS
    # makes it tens of milliseconds a row), with the page itself read there too, as the search's.
    own = {a.id: a.reply_window_days for a in web.store.accounts.list_accounts()}
    now, scope = web.store.clock(), who.scope
    fallback = web.config.replies.fallback_address

    def read(conn: sqlite3.Connection) -> tuple[list[tuple[Conversation, str]], bool]:
        rows = conversations_page(conn, scope, before=before, phone=phone, limit=SHOWN + 1)
        page = rows[:SHOWN]
        found = states.listed(web.config, conn, page, own, now)
        told = [
            (c, states.told(state, c, conn, fallback, now, operator=who.operator))
            for c, state in zip(page, found, strict=True)
        ]
        return told, len(rows) > SHOWN

    shown, more = await web.counts.run(read)
    last = shown[-1][0] if more else None
    # Each list's older link keeps the other list where it is.
    kept = {
        k: request.query_params[k] for k in ("phone", "before", "mo_before") if request.query_params.get(k)
    }
    ctx.update(
        {
            "rows": shown,
            "query": urlencode({k: v for k, v in kept.items() if k != "before"}),
            "next_before": f"{last.last_mt_at!r}_{last.id}" if last else None,
            "paged": before is not None or phone is not None,
            "mo_query": urlencode({k: v for k, v in kept.items() if k != "mo_before"}),
            "mo_next": mo_next,
            "fallback": fallback is not None,
        }
    )
    return web.render(request, "conversations.html", ctx)


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
    typed: dict[str, Any] = {k: text(form, k) for k in ("password", "account", "email", "reply_acl")}
    typed["numbers"] = texts(form, "number")
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
    bad: str | None = None,
) -> Response:
    """`typed`: a refused new service, shown again as typed; `bad`: its field at fault."""
    web = request.app.state.web
    accounts = web.store.accounts
    try:
        month, start, end = _month(request)
    except Invalid as exc:
        error, status, bad = str(exc), 400, "month"
        month, start, end = "", 0.0, 0.0  # no figures: the month asked for has none
    # Every MO of the month in the scope, by the service it was taken for: the money of a removed
    # service stays (billing has it), and a password given to another account later hides nothing.
    # And the corrections booked in the month, by the account each side was booked for, as the
    # month's billing file lists them: its totals are the page's. Read on the reader's thread with
    # the services (`premiumread`): on the loop, a month of 300,000 votes held every SMTP reply.
    now, scope = web.store.clock(), who.scope
    got = await web.counts.run(
        lambda conn: premiumread.read(conn, scope, (month, start, end) if month else None, now, SHOWN)
    )
    traffic, moved, corrections = got.traffic, got.moved, got.corrections
    figures = [_figure(f, correction=False) for f in traffic] + [_figure(f, correction=True) for f in moved]
    counts = [(f.sms, f.parts, f.price, f.commission) for f in traffic + moved]
    total = [sum(c[i] for c in counts) for i in range(4)]
    shown = web.env.filters["when"]
    configured = list(web.config.premium.tariffs)
    listed = [
        {
            "s": s.service,
            "account": s.account,
            "acl": s.acl,
            "kept": s.kept,
            "stuck": s.waits is not None and (s.waits.refused is not None or s.waits.expired_at is not None),
            "why": s.waits.why(shown) if s.waits else "",
            "todo": s.waits.todo(who.operator, quote="") if s.waits else "",
            # Numbers [premium] no longer has, marked as `premium list` marks them (`premiumgone`).
            "gone": premiumgone.gone(s.service.number_list, configured),
        }
        for s in got.services
    ]
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
        "numbers": configured,
        "accounts": accounts.list_accounts() if who.operator else [],
        "typed": _typed(typed),
        "error": error,
        "bad": (bad,),
        "done": done or notice(request, who),
    }
    # Rendered off the loop too: the operator's list of 2,200 services is 150 ms of template.
    return await web.render_off_loop(request, "premium.html", ctx, status)


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
    at: str | None = "password"  # the field being checked: the one a refusal marks
    try:
        password = premium_cli._password(text(form, "password"))
        # The CLI's rules, in the form's words (its messages name --email, --number).
        at = "email"
        email = premium_cli.mail_address(cfg, text(form, "email"), "mail address")
        at = "reply_acl"
        given = text(form, "reply_acl").replace(",", " ").split()
        acl = [premium_cli.mail_address(cfg, a, "answering address") for a in given] or [email]
        at = "number"
        ticked = [n for n in texts(form, "number") if n]
        configured = list(cfg.premium.tariffs)
        for n in ticked:
            if configured and n not in configured:
                raise Invalid(f"number {n} is not a configured premium number ({', '.join(configured)})")
        at = None  # the installation's numbers, not the form's
        numbers = premium_cli.premium_numbers(cfg, ticked)
        at = "account"
        name = text(form, "account").strip()
        try:
            account = store.accounts.get_account(name)
        except NotFound:
            raise Invalid(store.accounts.no_account(name)) from None
        at = "password"
        if repo.active_service(password) is not None:
            raise Invalid(f"password {password} is taken (passwords are unique, whatever the case)")
        at = None

        def add() -> str:
            service = repo.service(repo.add_service(password, account.id, email, numbers, acl))
            return handlers.ask_verification(store, cfg, service, account.name)

        detail = f"{password} {account.name} {email}"
        confirm = await web.change(who, account.id, "premium.add", detail, add)
    except (CliError, Invalid, NotFound) as exc:
        return await _premium_page(request, who, error=str(exc), status=400, typed=form, bad=at)
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
