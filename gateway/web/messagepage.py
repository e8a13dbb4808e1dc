"""One message in the panel: its page in full, and the queue actions on it (retry, hold, cancel).

Apart from gateway/web/messages.py (the search, the export and the mail recorded) because the
actions are the panel's only writes on the queue, and each refusal says what the CLI says.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from billing_reports import mtlate
from gateway.adminrules import SQLITE_INT_MAX, quiet_held
from gateway.privacy.repo import ERASED
from gateway.reasons import human_reason, refused_for_good
from gateway.smtp.dsnparams import dsn_asked, notices_asked
from gateway.store import adminstops
from gateway.store.retryrules import AccountSuspended, MailExpired, OptedOut, TextErased
from gateway.store.settling import FINAL_PART
from gateway.waitwords import parts_wait
from gateway.web.formtext import text
from gateway.web.security import NotYours, Who, after_post, guarded, notice


def _message(request: Request, who: Who) -> dict[str, Any]:
    mid = request.path_params["id"]
    if mid > SQLITE_INT_MAX:  # no such id can exist, and SQLite would overflow on it
        raise NotYours
    web = request.app.state.web
    msg = web.repo.message_detail(mid)
    if msg is None or not who.sees(msg["account_id"]):
        raise NotYours
    now = web.store.clock()
    msg["held"] = quiet_held(msg["held_until"], web.tz, now)
    # Why each part still to go waits, in `queue show`'s words: the row's note alone named no link.
    msg["waits"] = parts_wait(
        web.repo.conn,
        [(msg["recipient"], p) for p in msg["parts"]],
        links=web.links(window=None),  # no rate shown: /metrics' rate window stays (`gateway.linkstatus`)
        down=None,  # the panel runs in the daemon
        routes=web.config.routes(),
        now=now,
        when=web.env.filters["when"],
    )
    return msg


# Which parts each queue action takes (as gateway/store/admin.py does), what it says when it took
# some, and when there were none. A button is shown only where its action would take a part.
ACTIONS = {
    "retry": (
        ("hold", "failed", "expired", "cancelled"),
        "queued again",
        "nothing to retry: no part is held, failed, expired or cancelled",
    ),
    "hold": (("queued", "deferred"), "held", "nothing to hold: no part is waiting to be sent"),
    "cancel": (
        # A claimed part too: the dispatcher drops it if no link has it yet (`adminstops`).
        ("queued", "deferred", "hold", "active"),
        "cancelled",
        "nothing to cancel: no part is waiting to be sent",
    ),
}
DONE = {action: said for action, (_, said, _) in ACTIONS.items()}


def _actions(msg: dict[str, Any]) -> list[str]:
    """Retry only where sending again can help: a number the SMSC refused for good is refused again,
    and the user got a second bounce (`gateway.reasons`, as `smsgw queue retry`). Nor where the text
    was erased at the phone's request: the marker would be sent to it (`AdminRepo.text_erased`)."""
    states = {p["state"] for p in msg["parts"]}
    erased = ERASED in (msg["text"], *(p["text"] for p in msg["parts"]))
    final = erased or refused_for_good(msg["reason"], retry=True) is not None
    return [a for a, (takes, _, _) in ACTIONS.items() if states & set(takes) and not (a == "retry" and final)]


def _page(msg: dict[str, Any], who: Who, **more: Any) -> dict[str, Any]:
    return {
        "who": who,
        "m": msg,
        "actions": _actions(msg),
        "said": human_reason,
        "notices": notices_asked,
        "dsn": dsn_asked,
        # Every part ended: a report still missing is not coming (a submit the SMSC refused has none).
        "ended": bool(msg["parts"]) and all(p["state"] in FINAL_PART for p in msg["parts"]),
        **more,
    }


@guarded()
async def detail(request: Request, who: Who) -> Response:
    web = request.app.state.web
    msg = _message(request, who)
    done = notice(request, who)  # a queue action's result, kept in the session (`after_post`)
    return web.render(request, "message.html", _page(msg, who, done=done))


@guarded(operator=True)
async def queue_action(request: Request, who: Who, form: FormData) -> Response:
    """Operator: hold a waiting message, send a held, failed or expired one again, or cancel one."""
    web = request.app.state.web
    msg = _message(request, who)
    action = request.path_params["action"]
    admin = web.store.admin
    if action == "retry":
        if (why_not := refused_for_good(msg["reason"], retry=True)) is not None:  # a form shown before it was
            error = f"not sent again: {why_not}; it would be refused again"
            return web.render(request, "message.html", _page(msg, who, error=error), 409)
        hours = web.config.gateway.validity_hours  # the CLI's rule: a mail's passed Expiry-Date refuses it
        from gateway.bouncegroup import regroup  # here, as `Notifier` below: a retry's alone

        again = regroup(web.store, web.config)  # its mail's unsent bounce naming it, built without it
        work = lambda: admin.retry_message(  # noqa: E731
            msg["id"], before_reset=mtlate.retried, default_validity_hours=hours, regroup=again
        )
    elif action == "hold":
        work = lambda: admin.hold_message(msg["id"])  # noqa: E731
    elif action == "cancel":
        if text(form, "confirm") != "yes":
            error = "tick the box next to Cancel to confirm: the parts not yet sent are dropped"
            return web.render(request, "message.html", _page(msg, who, error=error, bad=("confirm",)), 400)
        from gateway.events import Notifier  # the daemon's; here, not at the top: events is heavy

        # The sender is told, as of any other end: the DSN is queued with the cancel.
        tell = Notifier(web.store, web.config)

        def work() -> int:  # its waiting parts cancelled, and those claimed asked of the dispatcher
            n = admin.cancel_message(msg["id"], tell=tell)
            return n + sum(ask for *_, ask in adminstops.parts_now(web.store.db.conn, msg["id"]))

    else:
        raise NotYours
    try:
        n = await web.change(
            who, msg["account_id"], f"message.{action}", str(msg["id"]), work, changed=lambda n: n > 0
        )
    except AccountSuspended as exc:  # a retry: as `smsgw queue retry` says it
        return web.render(request, "message.html", _page(msg, who, error=f"not sent again: {exc}"), 409)
    except TextErased as exc:  # a retry: the repository refuses an erased text in the retry's own write
        return web.render(request, "message.html", _page(msg, who, error=f"not sent again: {exc}"), 409)
    except OptedOut as exc:  # a retry: as `smsgw queue retry` says it
        error = f"not sent again: {exc.said(web.config.gateway.timezone)}"
        return web.render(request, "message.html", _page(msg, who, error=error), 409)
    except MailExpired as exc:  # a retry: as `smsgw queue retry` says it, without its --ignore-expiry
        error = (
            f"not sent again: {exc.said(web.config.gateway.timezone)}; the gateway's operator can send it"
            f" all the same (`smsgw queue retry {msg['id']} --ignore-expiry`)"
        )
        return web.render(request, "message.html", _page(msg, who, error=error), 409)
    said: list[str] = []
    if action == "cancel":  # as `queue cancel`: the dispatcher's verdict on the parts it claimed
        n, said = await _cancel_verdict(web.store, msg["id"], n)
        fresh = _message(request, who)
        if n == 0 and said and fresh["state"] not in FINAL_PART:  # as `queue cancel` says it
            error = f"nothing cancelled: {'; '.join(said)}"
            return web.render(request, "message.html", _page(fresh, who, error=error), 409)
    if n == 0:  # said on the page, nothing changed and nothing recorded
        fresh = _message(request, who)
        return web.render(request, "message.html", _page(fresh, who, error=ACTIONS[action][2]), 409)
    if action == "retry":
        web.wake()
    # Kept in the operator's session, not said by the URL: a link with it shows nothing to anyone
    # else, and a reload says when it was asked, not that it was done again.
    at = datetime.fromtimestamp(web.store.clock(), web.tz).strftime("%Y-%m-%d %H:%M")
    done = f"{n} part(s) {DONE[action]} then"
    if action == "retry" and (held := _message(request, who)["held_until"]) is not None:
        # A bulk SMS retried in its account's quiet hours waits for their end, as `queue retry` says.
        goes = datetime.fromtimestamp(held, web.tz)
        done = f"{n} part(s) released then; they go at {goes:%H:%M} (quiet hours)"
    done += "".join(f"; {line}" for line in said)
    return after_post(request, who, f"{action} asked at {at}: {done}", f"/messages/{msg['id']}")


async def _cancel_verdict(store: Any, message_id: int, n: int) -> tuple[int, list[str]]:
    """(parts cancelled, what is said of those on their way) once the dispatcher has decided on the
    claimed parts the cancel asked it about (`adminstops`), or `CANCEL_VERDICT_SECONDS` passed."""
    parts = adminstops.parts_now(store.db.conn, message_id)
    asked = {seq for seq, _state, ask in parts if ask}
    deadline = asyncio.get_running_loop().time() + adminstops.CANCEL_VERDICT_SECONDS
    while any(ask for *_, ask in parts) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        parts = adminstops.parts_now(store.db.conn, message_id)
    n -= len(asked)
    n += sum(1 for seq, state, _ask in parts if seq in asked and state == "cancelled")
    return n, adminstops.cannot_call_back(parts, len(parts))
