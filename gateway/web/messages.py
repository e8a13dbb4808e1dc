"""Messages: search (by number, user, date range, state), CSV export and the mail recorded without
becoming SMS; one message in full and its queue actions are `gateway.web.messagepage`'s.

The search pages by id: `before` is the last id shown, so every page is one index range however
deep the admin goes. A company admin's search is always limited to their account in the query
itself; a message of another account is answered 404, like one that does not exist.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.adminrules import MESSAGE_STATES, SQLITE_INT_MAX, quiet_held
from gateway.reasons import human_reason
from gateway.smtp.alerts import hint_for_panel
from gateway.store.admin import recorded_mail
from gateway.store.mailrecord import date_window
from gateway.web.csvexport import (
    BUSY,
    RETRY_AFTER_SECONDS,
    ExportResponse,
    as_csv,
    csv_separator,
    cut_line,
    header,
)
from gateway.web.messagepage import detail, queue_action
from gateway.web.repo import PAGE
from gateway.web.repo import search_messages as search_messages_on
from gateway.web.security import Who, guarded

STATES = MESSAGE_STATES  # a message's own states: parts are "deferred" or "active", messages never
CSV_MAX = 100_000  # rows in one export; narrow the search for more
CSV_BATCH = 1000  # rows per query and per chunk sent: one trip to the reader's thread each


class RowId(Convertor[int]):
    """A message's id in a path: Starlette's `int` took any number of digits, and int() raised past
    4,300 of them (a 500 and a traceback in the log); a longer one is the usual 404."""

    regex = "[0-9]{1,18}"  # SQLite's INTEGER holds every such number

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("rowid", RowId())


class BadQuery(ValueError):
    """A search field no form produces (an edited URL): answered 400, with what is wrong."""

    @property
    def field(self) -> tuple[str]:
        """The field the message starts by naming ("number: ..."), marked on the search form."""
        return (str(self).partition(":")[0],)


def _day(value: str | None, field: str, tz: ZoneInfo, *, end: bool = False) -> float | None:
    """Midnight starting (or, with `end`, ending) the day, in the installation's zone."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise BadQuery(f"{field}: {value!r} is not a date (YYYY-MM-DD)") from None
    if end:
        if day == date.max:
            return None
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


# Only the addresses whose part before the "@" is the one typed: a range of the users' email index
# (NOCASE, as LIKE), users first (CROSS JOIN). Joined the other way round, the planner read every user
# of the admin's account by `users_account`: 200,000 of them for each search.
_NAMED = (
    "SELECT u.email FROM users u CROSS JOIN accounts a ON a.id = u.account_id"
    " WHERE u.email LIKE ? ESCAPE '\\'{scope} ORDER BY a.name, u.email LIMIT ?"
)
HINTS = 5  # addresses named in one hint


def addresses_named(conn: sqlite3.Connection, local: str, account: str | None) -> list[str]:
    """The addresses `local@...` of the account (any account's for None), on the reader's thread:
    read on the loop's connection, every user of the account was read, and SMTP and the links
    stood still for as long (1-2 s at 200,000 users)."""
    pattern = re.sub(r"([\\%_])", r"\\\1", local) + "@%"
    if account is None:
        return [row[0] for row in conn.execute(_NAMED.format(scope=""), (pattern, HINTS))]
    sql = _NAMED.format(scope=" AND a.name = ?")
    return [row[0] for row in conn.execute(sql, (pattern, account, HINTS))]


async def _user(typed: str, who: Who, web: Any) -> str:
    """The sender searched for: a whole address. Part of one ("jan") found nothing and said only
    "No messages."; it is answered with the addresses it may mean, from the admin's own account
    (the operator's: any), or with how one is written."""
    if "@" in typed:
        return typed
    account = None if who.operator else who.user.account
    meant = await web.counts.run(lambda conn: addresses_named(conn, typed, account))
    shown = typed[:40]
    if meant:
        raise BadQuery(f"user: {shown!r} is not a whole address: did you mean {' or '.join(meant)}?")
    example = f"{shown}@{who.user.email.rpartition('@')[2]}"
    raise BadQuery(f"user: {shown!r} is not a whole address: give it in full, e.g. {example}")


async def _filters(request: Request, who: Who) -> dict[str, Any]:
    """The search's fields, or BadQuery saying which one is wrong: a number that is none, part of an
    address or a range ending before it starts found nothing, and the page said "No messages."."""
    q = request.query_params
    web = request.app.state.web
    number = (q.get("number") or "").strip() or None
    if number:
        from gateway.smtp.addressing import BadNumber, to_e164

        try:
            number = to_e164(number, web.config.gateway.default_region)
        except BadNumber as exc:
            raise BadQuery(f"number: {number[:40]!r} is not a phone number: {exc}") from None
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise BadQuery(f"state: {state!r} is not a message state ({', '.join(STATES)})")
    user = (q.get("user") or "").strip() or None
    since = _day(q.get("from"), "from", web.tz)
    until = _day(q.get("to"), "to", web.tz, end=True)
    if since is not None and until is not None and until <= since:
        raise BadQuery(f"to: {q['to']} is before from: {q['from']}: the dates end before they start")
    return {
        "number": number,
        "user": await _user(user, who, web) if user else None,
        "since": since,
        "until": until,
        "state": state,
    }


def parsed_before(value: str, what: str = "a message id") -> int | None:
    if not value:
        return None
    # isdigit would take "²" (int() refuses it); past SQLite's INTEGER the query overflows, and
    # past 4,300 digits int() itself raises: the length is bounded first (19 digits hold any id).
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or int(value) > SQLITE_INT_MAX:
        raise BadQuery(f"before: {value[:40]!r} is not {what}")
    return int(value)


def held_note(tz: ZoneInfo, clock: Callable[[], float]) -> Callable[[float | None], str]:
    """For the templates: what a message held for quiet hours waits for (R-2.4), or nothing."""
    return lambda held_until: quiet_held(held_until, tz, clock())


@guarded()
async def search(request: Request, who: Who) -> Response:
    web = request.app.state.web
    ctx: dict[str, Any] = {
        "who": who,
        "q": request.query_params,
        "states": STATES,
        "rows": [],
        "held": held_note(web.tz, web.store.clock),
        "said": human_reason,
    }
    try:
        filters = await _filters(request, who)
        before = parsed_before(request.query_params.get("before", ""))
    except BadQuery as exc:
        return web.render(
            request, "messages.html", {**ctx, "error": str(exc), "bad": exc.field, "query": ""}, 400
        )
    # On the reader's thread, as the CSV export: a search no index narrows (a date range of a big
    # account, a sender with most of its mail) reads for as long as it takes without stopping SMTP.
    scope, now = who.scope, web.store.clock()
    rows = await web.counts.run(
        lambda conn: search_messages_on(conn, scope, **filters, before_id=before, limit=PAGE + 1, now=now)
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    args = {k: v for k, v in request.query_params.items() if k != "before" and v}
    query = urlencode(args)
    ctx.update(
        {
            "rows": rows,
            "next_before": rows[-1]["id"] if more and rows else None,
            "args": args,
            "query": query,
        }
    )
    return web.render(request, "messages.html", ctx)


@guarded()
async def recorded(request: Request, who: Who) -> Response:
    """Mail recorded and not sent as SMS (R-1.7, R-2.5): auto-replies, bounces, recalls. It has no
    message, so the search, which starts from messages, never shows it. Scoped as the search: an
    admin sees their account's, the operator every account's and the mail of none."""
    web = request.app.state.web
    ctx: dict[str, Any] = {"who": who, "q": request.query_params, "recorded": []}
    try:
        before = parsed_before(request.query_params.get("before", ""), "a mail id")
    except BadQuery as exc:
        return web.render(request, "messages.html", {**ctx, "error": str(exc), "bad": exc.field}, 400)
    scope = who.scope
    rows = await web.counts.run(lambda conn: recorded_mail(conn, scope, before_id=before, limit=PAGE + 1))
    ctx["recorded"] = [{**r, "reason": hint_for_panel(r["reason"] or "")} for r in rows[:PAGE]]
    ctx["next_before"] = rows[PAGE - 1]["id"] if len(rows) > PAGE else None
    return web.render(request, "messages.html", ctx)


def _csv_name(request: Request, web: Any) -> str:
    """The file name says what is in it: the dates (or the day of the export) and the filters."""
    q = request.query_params
    parts = ["messages"]
    if q.get("from") or q.get("to"):
        parts.append(f"{q.get('from') or 'start'}_to_{q.get('to') or 'now'}")
    else:
        parts.append(datetime.fromtimestamp(web.store.clock(), web.tz).strftime("%Y-%m-%d"))
    for key in ("state", "number", "user"):
        if q.get(key):
            parts.append(q[key].strip())
    # The values are checked or searched as typed: keep what is safe in any file system.
    return re.sub(r"[^A-Za-z0-9@.+_-]", "_", "-".join(parts)) + ".csv"


@guarded()
async def export(request: Request, who: Who) -> Response:
    web = request.app.state.web
    try:
        filters = await _filters(request, who)
    except BadQuery as exc:
        ctx = {"who": who, "q": request.query_params, "states": STATES, "rows": [], "query": ""}
        return web.render(request, "messages.html", {**ctx, "error": str(exc), "bad": exc.field}, 400)
    slots = web.exports
    if not slots.take():  # gateway/web/csvexport.py: each export slows every page while it runs
        busy = web.render(request, "error.html", {"message": BUSY.format(n=slots.most), "who": who}, 503)
        busy.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return busy
    scope, tz = who.scope, web.tz
    separator = csv_separator(web.config.gateway.language)

    async def lines() -> AsyncIterator[str]:
        sent, before = 0, None
        # The ids the dates' messages lie between, looked up once (a month's index entries, tens
        # of ms): looked up for each batch, a month's export read them a hundred times over.
        window = await web.counts.run(
            lambda conn: date_window(conn, scope, filters["since"], filters["until"])
        )
        while sent < CSV_MAX:
            want = min(CSV_BATCH, CSV_MAX - sent)
            # Read and made into CSV in one call on the reader's thread: the loop only sends it.
            batch = await web.counts.run(
                lambda conn, b=before, n=want, first=sent == 0: as_csv(
                    search_messages_on(conn, scope, **filters, before_id=b, limit=n, window=window),
                    tz,
                    separator,
                    header(separator) if first else "",
                )
            )
            sent += batch.rows
            yield batch.text
            if batch.rows < want:
                return
            before = batch.last_id
        yield await web.counts.run(
            lambda conn: (
                cut_line(CSV_MAX, separator)
                if search_messages_on(conn, scope, **filters, before_id=before, limit=1, window=window)
                else ""
            )
        )

    try:
        name = _csv_name(request, web)
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        return ExportResponse(lines(), slots, media_type="text/csv; charset=utf-8", headers=headers)
    except BaseException:
        slots.give_back()  # no answer to give it back when sent
        raise


ROUTES = [
    Route("/messages", search, methods=["GET"]),
    Route("/messages/recorded", recorded, methods=["GET"]),
    Route("/messages.csv", export, methods=["GET"]),
    Route("/messages/{id:rowid}", detail, methods=["GET"]),
    Route("/messages/{id:rowid}/{action:str}", queue_action, methods=["POST"]),
]
