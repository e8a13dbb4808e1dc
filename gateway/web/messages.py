"""Messages: search (by number, user, date range, state), one message in full, CSV export, queue actions.

The search pages by id: `before` is the last id shown, so every page is one index range however
deep the admin goes. A company admin's search is always limited to their account in the query
itself; a message of another account is answered 404, like one that does not exist.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.web.repo import PAGE
from gateway.web.security import NotYours, Who, guarded

STATES = ("queued", "deferred", "active", "hold", "submitted", "delivered", "failed", "expired", "cancelled")
CSV_MAX = 100_000  # rows in one export; narrow the search for more


def _day(value: str | None, *, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return None
    return (day + timedelta(days=1) if end else day).timestamp()


def _filters(request: Request, who: Who) -> dict[str, Any]:
    q = request.query_params
    number = (q.get("number") or "").strip() or None
    if number:
        from gateway.smtp.addressing import BadNumber, to_e164

        try:
            number = to_e164(number, request.app.state.web.config.gateway.default_region)
        except BadNumber:
            pass  # searched as typed: it finds nothing rather than failing
    state = q.get("state") or None
    return {
        "number": number,
        "user": (q.get("user") or "").strip() or None,
        "since": _day(q.get("from")),
        "until": _day(q.get("to"), end=True),
        "state": state if state in STATES else None,
    }


@guarded()
async def search(request: Request, who: Who) -> Response:
    web = request.app.state.web
    before = request.query_params.get("before", "")
    rows = web.repo.search_messages(
        who.scope,
        **_filters(request, who),
        before_id=int(before) if before.isdigit() else None,
        limit=PAGE + 1,
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    args = {k: v for k, v in request.query_params.items() if k != "before" and v}
    query = urlencode(args)
    ctx = {
        "who": who,
        "rows": rows,
        "q": request.query_params,
        "states": STATES,
        "next_before": rows[-1]["id"] if more and rows else None,
        "args": args,
        "query": query,
    }
    return web.render(request, "messages.html", ctx)


@guarded()
async def export(request: Request, who: Who) -> Response:
    web = request.app.state.web
    rows = web.repo.search_messages(who.scope, **_filters(request, who), limit=CSV_MAX)

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "created", "account", "from", "recipient", "state", "parts", "reason"])
        for r in rows:
            writer.writerow(
                [
                    r["id"],
                    datetime.fromtimestamp(r["created_at"]).isoformat(timespec="seconds"),
                    r["account"],
                    r["mail_from"],
                    r["recipient"],
                    r["state"],
                    r["parts_total"],
                    r["reason"] or "",
                ]
            )
            yield out.getvalue()
            out.seek(0)
            out.truncate()

    headers = {"content-disposition": 'attachment; filename="messages.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


def _message(request: Request, who: Who) -> dict[str, Any]:
    mid = request.path_params["id"]
    msg = request.app.state.web.repo.message_detail(mid)
    if msg is None or not who.sees(msg["account_id"]):
        raise NotYours
    return msg


@guarded()
async def detail(request: Request, who: Who) -> Response:
    web = request.app.state.web
    return web.render(request, "message.html", {"who": who, "m": _message(request, who)})


@guarded(operator=True)
async def queue_action(request: Request, who: Who, form: FormData) -> Response:
    """Operator: hold a waiting message, send a held, failed or expired one again, or cancel one."""
    web = request.app.state.web
    msg = _message(request, who)
    action = request.path_params["action"]
    admin = web.store.admin
    if action == "retry":
        work = lambda: admin.retry_message(msg["id"])  # noqa: E731
    elif action == "hold":
        work = lambda: admin.hold_message(msg["id"])  # noqa: E731
    elif action == "cancel":
        work = lambda: admin.cancel_message(msg["id"])  # noqa: E731
    else:
        raise NotYours
    await web.change(who, msg["account_id"], f"message.{action}", str(msg["id"]), work)
    if action == "retry":
        web.wake()
    return RedirectResponse(f"/messages/{msg['id']}", status_code=303)


ROUTES = [
    Route("/messages", search, methods=["GET"]),
    Route("/messages.csv", export, methods=["GET"]),
    Route("/messages/{id:int}", detail, methods=["GET"]),
    Route("/messages/{id:int}/{action:str}", queue_action, methods=["POST"]),
]
