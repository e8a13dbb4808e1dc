"""Account settings: what the company admin may change about their own account.

The page also shows the account's opt-outs, whose list and form are `gateway.web.accountoptouts`:
the shared list (a number that said STOP is off for everyone) as far as it concerns the account,
and the account's own entries, which its admin adds and removes.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from acl.quiet import parse_window
from gateway.accountrules import countries_list
from gateway.adminrules import (
    billing_addresses,
    cut_from_list,
    end_marker_problem,
    limits_note,
    mail_address_problem,
)
from gateway.config import Config
from gateway.senderform import stored_sender
from gateway.senderrules import sender_refusal
from gateway.web.accountoptouts import change_optout, optouts_view, parse_before
from gateway.web.formtext import text
from gateway.web.pages import Invalid, account_for, parse_limit
from gateway.web.security import Who, after_post, guarded, notice
from gateway.web.staleform import (
    LABELS,
    STAMP,
    Edit,
    compare,
    conflict_message,
    merged,
    read_stamp,
    said,
    stamp,
)

log = structlog.get_logger(__name__)

SPLIT_MODES = ("concatenated", "separate")
DLR_MAIL = ("none", "failed", "all")
OVERFLOW = ("truncate", "reject")


def _billing_to(form: FormData, cfg: Config) -> list[str]:
    """The CLI's `--billing-to` rule: a few mailboxes off the gateway's domains, or `none` (none at all)."""
    given = text(form, "billing_to").replace(",", " ").split()
    try:
        return billing_addresses(cfg, given)
    except ValueError as exc:
        raise Invalid(f"billing addresses: {exc}", "billing_to") from exc


def _settings(form: FormData, operator: bool, cfg: Config) -> tuple[dict[str, Any], str | None]:
    """The account's settings from the form, and what the admin is told of the sender's stored form.
    The limits are the operator's (they cap what is billed), and so is the sender: replies go to
    whoever last sent from a number (R-3), so an admin who could set another account's number, a
    premium number or the reply pool's would be mailed that account's replies, and billed for them."""
    s: dict[str, Any] = {}
    said = None
    if operator:
        s["monthly_limit"] = parse_limit(
            text(form, "monthly_limit"), "account monthly limit", "monthly_limit"
        )
        s["daily_limit"] = parse_limit(text(form, "daily_limit"), "account daily limit", "daily_limit")
        # "+48 500 100 200", 500100201 and 0048500100201 are +48500100200, as `account set --sender`
        # takes them (`gateway.senderform`): stored as typed, the national form went out with no
        # originator on a CIMD2 link with a sender_prefix.
        stored = stored_sender(text(form, "sender"), cfg.gateway.default_region)
        sender, said = stored.value, stored.note
        problem = sender_refusal(cfg, sender) if sender else None
        if problem is not None:  # the CLI's rule: an SMSC would cut it short, or it is a premium number
            raise Invalid(problem, "sender")
        s["sender"] = sender or None
        try:  # the CLI's `--countries`: a mistyped number abroad is costly, so the operator's to set
            s["countries"] = countries_list([text(form, "countries")])
        except ValueError as exc:
            raise Invalid(f"countries: {exc}", "countries") from exc
    overflow = text(form, "overflow", "truncate")
    if overflow not in OVERFLOW:
        raise Invalid(f"overflow must be one of {', '.join(OVERFLOW)}", "overflow")
    s["overflow"] = overflow
    s["confirm"] = int(text(form, "confirm") == "on")
    s["bulk"] = int(text(form, "bulk") == "on")
    s["auto_generated"] = "send" if text(form, "auto_generated") == "on" else "record"
    split = text(form, "split_mode")
    if split not in SPLIT_MODES:
        raise Invalid(f"split mode must be one of {', '.join(SPLIT_MODES)}", "split_mode")
    s["split_mode"] = split
    s["transliterate"] = int(text(form, "transliterate") == "on")
    marker = text(form, "end_marker").strip()
    if (problem := end_marker_problem(marker)) is not None:
        # The CLI's rule: a marker with a line break never matches a line.
        raise Invalid(problem, "end_marker")
    s["end_marker"] = marker or None
    try:  # one phrase a line; the CLI's rule (at least 10 characters each)
        s["cut_from"] = cut_from_list(p for p in text(form, "cut_from").splitlines() if p.strip())
    except ValueError as exc:
        raise Invalid(str(exc), "cut_from") from exc
    dlr = text(form, "dlr_mail")
    if dlr not in DLR_MAIL:
        raise Invalid(f"delivery report mail must be one of {', '.join(DLR_MAIL)}", "dlr_mail")
    s["dlr_mail"] = dlr
    notify = text(form, "notify_address").strip()
    if notify and (problem := mail_address_problem(cfg, notify)) is not None:
        raise Invalid(problem, "notify_address")
    s["notify_address"] = notify or None
    inbound = text(form, "inbound_address").strip()
    if inbound and (problem := mail_address_problem(cfg, inbound)) is not None:
        raise Invalid(f"SMS to the account's number: {problem}", "inbound_address")
    s["inbound_address"] = inbound or None
    quiet = text(form, "quiet_hours").strip()
    if quiet.lower() in ("", "none", "off"):
        s["quiet_start"] = s["quiet_end"] = None
    else:
        try:
            s["quiet_start"], s["quiet_end"] = parse_window(quiet)
        except ValueError as exc:
            raise Invalid(f"quiet hours: {exc}", "quiet_hours") from exc
    return s, said


TEXT_FIELDS = (
    "sender",
    "split_mode",
    "end_marker",
    "cut_from",
    "quiet_hours",
    "dlr_mail",
    "overflow",
    "monthly_limit",
    "daily_limit",
    "billing_to",
    "notify_address",
    "inbound_address",
    "countries",
)
CHECKBOXES = ("transliterate", "confirm", "bulk")
OPERATORS = ("sender", "monthly_limit", "daily_limit", "countries")  # not in an admin's form


def _fields(who: Who) -> tuple[str, ...]:
    """The fields of the form `who` is shown: the stamp covers these, and a save writes only these."""
    every = (*TEXT_FIELDS, *CHECKBOXES, "auto_generated")
    return every if who.operator else tuple(n for n in every if n not in OPERATORS)


def _field(key: str) -> str:
    """The form field an account setting comes from."""
    return "quiet_hours" if key in ("quiet_start", "quiet_end") else key


def _shown(acc: Any, billing_to: list[str], typed: FormData | None) -> dict[str, Any]:
    """What the settings form shows: the account as stored, or the refused form as typed, so that
    one mistake does not cost the admin every other field they changed."""
    if typed is not None:
        shown: dict[str, Any] = {k: text(typed, k) for k in TEXT_FIELDS}
        shown.update({k: text(typed, k) == "on" for k in (*CHECKBOXES, "auto_generated")})
        return shown
    return {
        "sender": acc.sender or "",
        "split_mode": acc.split_mode,
        "end_marker": acc.end_marker or "",
        "cut_from": "\n".join(acc.cut_from),
        "quiet_hours": f"{acc.quiet_start}-{acc.quiet_end}" if acc.quiet_start else "",
        "dlr_mail": acc.dlr_mail,
        "overflow": acc.overflow,
        "monthly_limit": "" if acc.monthly_limit is None else str(acc.monthly_limit),
        "daily_limit": "" if acc.daily_limit is None else str(acc.daily_limit),
        "billing_to": " ".join(billing_to),
        "notify_address": acc.notify_address or "",
        "countries": " ".join(acc.countries),
        "inbound_address": acc.inbound_address or "",
        **{k: bool(getattr(acc, k)) for k in CHECKBOXES},
        "auto_generated": acc.auto_generated == "send",  # 'record' or 'send', a checkbox here
    }


async def _page(
    request: Request,
    who: Who,
    error: str = "",
    done: str = "",
    status: int = 200,
    typed: FormData | None = None,
    number: str = "",
    conflict: tuple[dict[str, Any], dict[str, Any], list[str]] | None = None,
    bad: tuple[str, ...] = (),
    removing: str = "",
) -> Response:
    """`typed`: a refused settings form, shown again as typed with the stamp it came with (what it was
    loaded with still decides what it changed); `number`: a refused opt-out number; `conflict`: the
    form refused for changes made meanwhile, as `merged` shows it, the settings now, and the fields
    changed on both sides (the stamp is then the current settings': saving again is deliberate);
    `bad`: the fields at fault (those changed on both sides, for a conflict; `optout_...` the opt-out
    forms', `removing` the number of the row whose removal was refused)."""
    web = request.app.state.web
    acc = account_for(request, who, request.query_params.get("account"))
    shown = _shown(acc, web.store.accounts.billing_addresses(acc.id), typed)
    loaded = stamp(shown, _fields(who))
    meanwhile: list[dict[str, str]] = []
    if conflict is not None:
        shown, current, names = conflict
        loaded = stamp(current, _fields(who))
        meanwhile = [{"name": n, "label": LABELS[n], "now": said(current[n])} for n in names]
        bad = tuple(names)
    elif typed is not None:
        loaded = text(typed, STAMP)
    try:
        before = parse_before(request.query_params.get("optouts_before", ""))
    except Invalid as exc:  # an edited URL: said, and the first page shown
        error, status, before = str(exc), 400, None
    optouts = await optouts_view(request, who, acc, before)
    ctx = {
        "who": who,
        "account": acc,
        "split_modes": SPLIT_MODES,
        "dlr_modes": DLR_MAIL,
        "overflow_modes": OVERFLOW,
        "shown": shown,
        "loaded": loaded,
        "meanwhile": meanwhile,
        "number": number,
        "removing": removing,
        "optouts": optouts,
        "error": error,
        "bad": bad,
        "done": done or notice(request, who),
    }
    return web.render(request, "account.html", ctx, status)


def _change(key: str, value: Any) -> str:
    """A setting as the audit trail says it; the phrases one by one, not as a Python tuple."""
    if value is None or value == ():
        return f"{key} cleared"
    if isinstance(value, tuple):
        return f"{key}=" + " | ".join(value)
    return f"{key}={value}"


@guarded()
async def settings(request: Request, who: Who) -> Response:
    return await _page(request, who)


@guarded()
async def change_settings(request: Request, who: Who, form: FormData) -> Response:
    web = request.app.state.web
    acc = account_for(request, who, request.query_params.get("account"))
    try:
        new, sender_said = _settings(form, who.operator, web.config)
        billing_to = _billing_to(form, web.config)
        loaded = read_stamp(text(form, STAMP))
    except Invalid as exc:
        return await _page(request, who, error=str(exc), status=400, typed=form, bad=(exc.field or "",))
    names = _fields(who)
    typed = _shown(acc, [], form)
    accounts = web.store.accounts

    def save() -> tuple[Edit, dict[str, Any], bool]:
        """Compared with the settings inside the write, so that no save lands between the look and it."""
        now = accounts.get_account(acc.name)
        current = _shown(now, accounts.billing_addresses(now.id), None)
        edit = compare(loaded, typed, current, names)
        if edit.meanwhile:
            return edit, current, False
        mine = {k: v for k, v in new.items() if _field(k) in edit.touched}
        # A cleared setting is said so: the trail read "notify_address=None".
        changed = [_change(k, v) for k, v in mine.items() if getattr(now, k) != v]
        billing = "billing_to" in edit.touched
        if billing and sorted(a.lower() for a in billing_to) != accounts.billing_addresses(now.id):
            changed.append(f"billing_to={' '.join(billing_to) or 'none'}")
        if not changed:
            # As `account set`: a save of the settings as they were (or of fields this admin may not
            # set, ignored) is no change to record, and "updated" read as if something had been.
            return edit, current, False
        accounts.update_account(acc.name, **mine)
        if billing:
            accounts.set_billing_addresses(acc.name, billing_to)
        # web.change takes its audit text before the write runs; this one is known only inside it.
        web.repo.audit(who.user.email, acc.id, "account.set", f"{acc.name}: {', '.join(changed)}")
        return edit, current, True

    edit, current, changed = await web.store.write(save, interactive=True)
    if edit.meanwhile:
        error = conflict_message(edit.meanwhile, current)
        shown = merged(typed, current, edit.touched)
        return await _page(request, who, error=error, status=409, conflict=(shown, current, edit.meanwhile))
    if changed:
        log.info("web.changed", actor=who.user.email, action="account.set")
    done = f"account {acc.name} {'updated' if changed else 'unchanged: it had these settings already'}"
    after = web.store.accounts.get_account(acc.name)  # the limits as saved, this form's or not
    if note := limits_note(after.monthly_limit, after.daily_limit):
        done += f" (note: {note})"
    if sender_said is not None and "sender" in edit.touched:
        done += f" (note: sender {sender_said})"
    if after.inbound_address:
        from gateway.conversations.inbound import PANEL, doubts

        done += "".join(f" (note: {d})" for d in doubts(web.store.db.conn, web.config, acc.name, PANEL))
    return after_post(request, who, done)


ROUTES = [
    Route("/account", settings, methods=["GET"]),
    Route("/account", change_settings, methods=["POST"]),
    Route("/optouts", change_optout, methods=["POST"]),
]
