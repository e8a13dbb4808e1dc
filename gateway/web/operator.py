"""Operator pages: every account (create, suspend, resume), the links, and the audit trail."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.adminrules import (
    SUSPENSION_REASON_DEFAULT,
    account_name_problem,
    suspend,
    suspension_reason_problem,
)
from gateway.cli.stored import senders_shared, shared_sender_line
from gateway.configbase import ConfigError
from gateway.lookalikes import lookalike_note
from gateway.printalike import account_name_clash
from gateway.relaynets import network, network_refusal
from gateway.senderform import stored_sender
from gateway.senderrules import sender_refusal, unanswerable_note
from gateway.store.accounts import Conflict, NotFound
from gateway.web.formtext import text
from gateway.web.pages import Invalid, confirmed
from gateway.web.security import Who, after_post, guarded, notice
from gateway.web.sudo import SUDO_MINUTES, NeedsPassword, confirm_admin, needs_password


async def _page(
    request: Request,
    who: Who,
    error: str = "",
    done: str = "",
    status: int = 200,
    typed: FormData | None = None,
    bad: str | None = None,
) -> Response:
    """`typed`: a refused new account or suspension, shown again as typed; `bad`: its field at fault."""
    web = request.app.state.web
    again: dict[str, str] = {}
    if typed is not None and text(typed, "action") in ("add", "suspend"):
        again = {k: text(typed, k) for k in ("action", "name", "sender", "networks", "reason")}
    ctx = {
        "who": who,
        "accounts": web.store.accounts.list_accounts(),
        "audit": web.repo.audit_log(None, 30),
        "typed": again,
        "sudo": needs_password(request, who),  # trusting relay networks then asks for the password
        "sudo_minutes": SUDO_MINUTES,
        "error": error,
        "bad": (bad,),
        "done": done or notice(request, who),
    }
    return web.render(request, "accounts.html", ctx, status)


@guarded(operator=True)
async def accounts(request: Request, who: Who) -> Response:
    return await _page(request, who)


@guarded(operator=True)
async def change_account(request: Request, who: Who, form: FormData) -> Response:
    web = request.app.state.web
    store = web.store
    name = text(form, "name").strip()
    action = text(form, "action")
    try:
        if action == "add":
            if (problem := account_name_problem(name)) is not None:
                raise Invalid(problem, "name")
            others = (a.name for a in store.accounts.list_accounts())
            if (clash := account_name_clash(others, name)) is not None:
                raise Invalid(clash, "name")  # as `smsgw account add` refuses it
            # Commas or spaces between them, as the panel's other lists; each stored as the network
            # it trusts (`10.0.0.1/8` is 10.0.0.0/8).
            typed = text(form, "networks").replace(",", " ").split()
            try:
                nets = list(dict.fromkeys(str(network(cidr)) for cidr in typed))
            except ConfigError as exc:
                raise Invalid(str(exc), "networks") from exc
            # "+48 500 100 200", 500100201 and 0048500100201 are +48500100200, as `account add
            # --sender` takes them (`gateway.senderform`).
            stored = stored_sender(text(form, "sender"), web.config.gateway.default_region)
            sender = stored.value or None
            problem = sender_refusal(web.config, sender) if sender else None
            if problem is not None:  # else every SMS fails (suspending it) or each answer is a premium SMS
                raise Invalid(problem, "sender")
            # As `smsgw account add` refuses it: a mail server in two accounts' networks sent as the
            # users of either, on the other's bill (the panel stored what the CLI refused).
            refusal, carved = network_refusal(store.db.conn, name, nets, "network")
            if refusal is not None:
                raise Invalid(refusal, "networks")
            if nets:  # a mail server there sends as the account's users: a credential, as a password
                await confirm_admin(request, who, form, f"trusting relay networks for account {name}")
            acc = await web.change(
                who,
                None,
                "account.add",
                name,
                lambda: store.accounts.add_account(name, networks=nets, sender=sender),
            )
            done = f"account {acc.name} added (networks: {', '.join(acc.networks) or 'none'})"
            every = store.accounts.list_accounts()
            others = (a.name for a in every)
            said = f"sender {stored.note}" if stored.note else None
            notes = [
                n for n in (said, lookalike_note(others, acc.name), unanswerable_note(sender), *carved) if n
            ]
            shared = senders_shared(web.config, ((a.name, a.sender) for a in every))  # as the CLI
            notes += [
                shared_sender_line(number, names) for number, names in shared.items() if acc.name in names
            ]
            if notes:  # as the CLI says them
                done += f" (note: {'; '.join(notes)})"
        elif action in ("suspend", "resume"):
            acc = store.accounts.get_account(name)
            if action == "suspend":
                confirmed(form, f"suspend account {acc.name}")
                reason = text(form, "reason").strip() or None  # None: the default, or kept
                if reason and (problem := suspension_reason_problem(reason)) is not None:
                    raise Invalid(problem, "reason")  # the CLI's rule: it is said in every SMTP refusal
                result = await web.change(
                    who,
                    acc.id,
                    "account.suspend",
                    reason or SUSPENSION_REASON_DEFAULT,
                    lambda: suspend(store, acc.name, reason),
                    changed=lambda r: r.since is None or r.reason != r.earlier_reason,
                )
                done = result.said(acc.name, web.env.filters["when"])  # the page's time format
            else:
                if acc.suspended_at is None:
                    raise Invalid(f"account {acc.name} is not suspended")
                released = await web.change(
                    who, acc.id, "account.resume", "", lambda: store.policy.resume_account(acc.id)
                )
                done = f"account {acc.name} resumed; {released} held message(s) go again"
        else:
            raise Invalid(f"unknown action {action!r}")
    except (Invalid, NeedsPassword, Conflict, NotFound, ConfigError) as exc:
        bad = "name" if action == "add" and isinstance(exc, Conflict) else getattr(exc, "field", None)
        return await _page(request, who, error=str(exc), status=400, typed=form, bad=bad)
    return after_post(request, who, done)


@guarded(operator=True)
async def links(request: Request, who: Who) -> Response:
    web = request.app.state.web
    return web.render(request, "links.html", {"who": who, "links": web.links()})


ROUTES = [
    Route("/operator/accounts", accounts, methods=["GET"]),
    Route("/operator/accounts", change_account, methods=["POST"]),
    Route("/operator/links", links, methods=["GET"]),
]
