"""The panel's application: its context (store, login guard, sessions), templates and routes.

Built by `build_app` for the daemon (gateway/web/server.py) and for tests, which drive it with an
ASGI client on their own event loop: the store belongs to the loop's thread, so the app must run
on the loop that opened it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from acl.lockout import Attempt, AuthGuard, Refused
from acl.logins import MAX_LOGIN
from acl.passwords import off_loop, verify_password
from gateway.adminrules import age
from gateway.bitelog import FaultLog
from gateway.cli.terminal import ESCAPES
from gateway.config import Config
from gateway.linkstatus import LinksReader, no_links
from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.store.trouble import disk_full
from gateway.supervisor import Worker
from gateway.web.bodycap import BodyCap
from gateway.web.cookies import cookie, drop_cookie
from gateway.web.counts import CountReader
from gateway.web.csvexport import ExportSlots
from gateway.web.formtext import file_field, sent_as_file, text
from gateway.web.hosts import KnownHosts, panel_names
from gateway.web.keptforms import FIELD as KEPT
from gateway.web.keptforms import KEEP_MINUTES
from gateway.web.loginlog import LoginLog
from gateway.web.loginsite import refused as login_refused
from gateway.web.metrics import Heartbeat
from gateway.web.repo import PanelRepo
from gateway.web.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SecurityHeaders,
    Sessions,
    Who,
    guarded,
    https,
    local_path,
    same,
    set_cookie,
    who_is,
)

log = structlog.get_logger(__name__)
HERE = Path(__file__).parent
LOGIN_REFUSED = (
    "wrong email or password, or too many failed attempts: wait a few minutes."
    " Forgot the password? Your company's admin (or the gateway's operator) sets a new one"
)
LOGIN_BUSY = "too many logins at once from here: try again in a moment"


_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # as token_urlsafe(32) makes them


def when(ts: float | None, tz: ZoneInfo | None = None) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def outside(value: object, limit: int = 200) -> str:
    """A field a stranger wrote (a recorded mail's subject or sender), as a table cell shows it:
    control, bidi override and isolate characters escaped as the CLI prints them (a U+202E made
    the cell read otherwise than what was sent), and cut at `limit` (a 5,000-character subject
    made the table 45,000 px wide)."""
    text = "" if value is None else str(value).translate(ESCAPES)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class WebContext:
    """What the handlers reach through `request.app.state.web`."""

    config: Config
    store: Store
    guard: AuthGuard
    links: LinksReader = no_links  # name -> state, submitted, in_flight, rate (`LinkView`)
    wake: Callable[[], None] = lambda: None  # the dispatcher, after a retry
    smtp_replies: Callable[[], dict[str, int]] = dict  # reply code -> replies sent since start
    heartbeat: Heartbeat = field(default_factory=Heartbeat)  # /healthz's write, one a second
    workers: Mapping[str, Worker] = field(default_factory=dict)  # the supervisor's, for /healthz
    login_log: LoginLog = field(default_factory=LoginLog)  # refused logins, one line a second per kind
    sessions: Sessions = field(init=False)
    repo: PanelRepo = field(init=False)
    counts: CountReader = field(init=False)  # /metrics, off the loop
    exports: ExportSlots = field(default_factory=ExportSlots)  # CSV exports running, panel-wide
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.config.web.session_hours * 3600, self.store.clock)
        self.repo = PanelRepo(self.store.db, self.store.clock)
        self.counts = CountReader(self.store.db.path)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
        )
        # The installation's zone, as the limits and the billing count days and months: the
        # process's own zone is whatever the host says (often UTC).
        self.env.filters["when"] = lambda ts: when(ts, self.tz)
        self.env.filters["outside"] = outside
        self.env.filters["duration"] = age
        self.env.globals["fault"] = fault

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.gateway.timezone)

    def render(self, request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> Response:
        html = self.env.get_template(name).render(request=request, **ctx)
        return HTMLResponse(html, status_code=status_code)

    async def render_off_loop(
        self, request: Request, name: str, ctx: dict[str, Any], status_code: int = 200
    ) -> Response:
        """`render` in a thread, for the pages whose template is long work (a year of the operator's
        bills, 2,200 premium services: 150-250 ms that held every SMTP reply). The context must be
        read already: nothing in a template may touch the loop's database connection."""
        html = await asyncio.to_thread(self.env.get_template(name).render, request=request, **ctx)
        return HTMLResponse(html, status_code=status_code)

    async def change(
        self,
        who: Who,
        account_id: int | None,
        action: str,
        detail: str,
        work: Callable[[], Any],
        changed: Callable[[Any], bool] = lambda result: True,
    ) -> Any:
        """Run one change and its audit row in one write: no change without its record, and no
        record of a change that did nothing (`changed` judges `work`'s result)."""

        def both() -> Any:
            result = work()
            if changed(result):
                self.repo.audit(who.user.email, account_id, action, detail)
            return result

        result = await self.store.write(both, interactive=True)
        log.info("web.changed", actor=who.user.email, action=action)
        return result


@pass_context
def fault(ctx: Context, name: str) -> Markup:
    """The attributes of form field `name` when the refusal shown is about it (the page's `bad`): a
    screen reader then says the field is wrong and reads the error (base.html's #error) with it; the
    whole form refused marks no field."""
    if ctx.get("error") and name in (ctx.get("bad") or ()):
        return Markup(' aria-invalid="true" aria-describedby="error"')
    return Markup("")


async def login_form(
    request: Request,
    error: str = "",
    status_code: int = 200,
    then: str | None = None,
    ended: bool = False,
    kept: str = "",
) -> Response:
    """`then`: where the login goes on to (the form's `next`, else the query's, as the guard sent it);
    `ended`: a form was posted after the session ended, and the page says so; `kept`: the token of
    that form kept for its user's login (gateway/web/keptforms.py), carried by the form while it is
    kept. A refused login's address is put back by static/forms.js: the page itself is the same for
    every failure."""
    web: WebContext = request.app.state.web
    # The browser's pre-login token, if it has one, is kept: a new one for each GET /login made every
    # login tab but the last answer "the form expired" (two tabs, or a panel of several tabs after
    # the idle logout).
    held = cookie(request, LOGIN_COOKIE) or ""
    token = held if _LOGIN_TOKEN.fullmatch(held) else secrets.token_urlsafe(32)
    then = local_path(request.query_params.get("next") if then is None else then)
    if not error and who_is(request) is not None:
        # Logged in already (a bookmark of the login page, a second tab): the form again read as a
        # logout nobody asked for.
        return RedirectResponse(then, status_code=303)
    ctx = {"csrf": token, "error": error, "next": "" if then == "/" else then, "ended": ended}
    ctx |= {"kept": kept if web.sessions.kept.held(kept) else "", "keep_minutes": KEEP_MINUTES}
    response = web.render(request, "login.html", ctx, status_code)
    set_cookie(response, LOGIN_COOKIE, token, secure=https(request), max_age=3600)
    return response


def _text(value: str) -> bool:
    """Whether `value` is text that UTF-8 (and so the database) can hold: no lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def login(request: Request) -> Response:
    """Email + the SMTP AUTH password; guesses count against the same lockout as SMTP AUTH."""
    web: WebContext = request.app.state.web
    form = await request.form()
    if (sent := await file_field(form)) is not None:  # before anything is read: not a login, nor a guess
        return await login_form(request, sent_as_file(sent), 400)
    # The page the admin opened before logging in (a link from a mail, a bookmark), never elsewhere.
    then = local_path(text(form, "next"))
    kept = text(form, KEPT)

    async def again(error: str, status_code: int) -> Response:
        return await login_form(request, error, status_code, then, kept=kept)

    if not same(text(form, "csrf"), cookie(request, LOGIN_COOKIE)):
        return await again("the form expired; try again", 403)
    if why := login_refused(request):
        # Login CSRF: the token cannot tell a page of another origin of the same site; the browser's
        # Sec-Fetch-Site can, else its Origin or Referer (gateway/web/loginsite.py).
        return await again(why, 403)
    email = text(form, "email").strip()
    password = text(form, "password")
    if not (_text(email) and _text(password)):
        # A multipart form may name its own charset ("unicode_escape" turns "\ud800" into a lone
        # surrogate): no browser sends such a form, and the database cannot even look it up.
        return await again("the form could not be read; send it as UTF-8", 400)
    ip = request.client.host if request.client else None
    # No address is longer (RFC 5321 4.5.3.1): such a login is refused unlooked-at, as a failure
    # like any other (same answer, counted against the address, the lock respected), and the guard
    # keys it by a digest (acl.logins.login_key): 60 KB logins held about 100 KB each for 24 h.
    possible = len(email) <= MAX_LOGIN
    attempt = await web.guard.begin_waiting(ip, email)  # behind checks in flight for the login
    if not isinstance(attempt, Attempt):
        web.login_log.refused(ip, attempt.value)
        return await again(LOGIN_BUSY if attempt is Refused.BUSY else LOGIN_REFUSED, 429)
    try:
        if attempt.delay > 0:  # its turn while failures flood in: password checks stay bounded
            await asyncio.sleep(attempt.delay)
        user = web.store.accounts.find_user(email) if email and possible else None
        ok = possible and await off_loop(verify_password, password, user.password_hash if user else None)
    except BaseException:
        # A fault of ours (database) or the server stopping (uvicorn does not cancel a handler
        # when its client hangs up): the slot goes back. Kept, it counted as a guess in flight
        # for ever, an invisible lock that no `smsgw auth unlock` lifted until a restart.
        web.guard.cancel(attempt)
        raise
    # A user's address may be listed as typed; anything else may be a password in the wrong field.
    lockout = web.guard.settle(attempt, ok, known=user is not None)
    if not ok or user is None:
        web.login_log.failed(ip, locked=lockout is not None)
        return await again(LOGIN_REFUSED, 429 if lockout else 401)
    if user.role not in ("admin", "operator"):
        return await again("this login has no access to the panel; ask your admin", 403)
    response = RedirectResponse(then, status_code=303)
    token = web.sessions.start(user)
    # A form posted after this user's last session ran out: its page shows it again (once, its own
    # user's only: anyone else's login drops it).
    if (back := web.sessions.kept.take(kept, user.id)) is not None and (new := web.sessions.get(token)):
        new.kept = back
    set_cookie(response, SESSION_COOKIE, token, secure=https(request))
    drop_cookie(response, request, LOGIN_COOKIE)
    log.info("web.login", login=user.email, role=user.role)
    return response


@guarded()
async def logout(request: Request, who: Who, form: Any) -> Response:
    web: WebContext = request.app.state.web
    web.sessions.end(cookie(request, SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    drop_cookie(response, request, SESSION_COOKIE)
    return response


# Starlette's own answers to a path no route has and to a method a route does not take: a bare
# "Not Found" in text, with no way back. The panel's error page instead, as its own 404s.
_ROUTING_ERRORS = {
    404: "not found",
    405: "this page is not opened that way: use the panel's links and buttons",
}


def allowed_methods(request: Request) -> str:
    """Every method the panel takes at the request's path, for a 405's Allow (RFC 9110 15.5.6).
    A page's GET and POST are separate routes, and Starlette's 405 names the first one's only:
    `PUT /users` answered "Allow: GET, HEAD" though the page's forms POST to it."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def routing_error(request: Request, exc: Exception) -> Response:
    code = getattr(exc, "status_code", 404)
    # A logged-in admin keeps the menu (and is not offered "Log in").
    ctx = {"message": _ROUTING_ERRORS[code], "who": who_is(request)}
    response = request.app.state.web.render(request, "error.html", ctx, code)
    response.headers.update(getattr(exc, "headers", None) or {})  # a 405's Allow: a static file's own
    if code == 405 and (methods := allowed_methods(request)):
        response.headers["Allow"] = methods
    return response


# A write the store refused for the disk's sake (full, locked by another program past the wait, an
# I/O error): one line a second per kind, without a traceback (nothing of ours failed).
_store_faults = FaultLog(log)
DISK_FULL = "the gateway's disk is full; free space there (old logs, backups) and try again"
STORE_BUSY = (
    "the gateway's database is busy (another program holds it) or cannot be written; try again in a"
    " moment (`smsgw status` says which)"
)


async def store_refused(request: Request, exc: Exception) -> Response:
    """A save the store refused (a full disk) is a page saying so, 503, not a bare 500: the form's
    POST gave "Internal Server Error" and a traceback in the log, and the connection was dropped
    under the browser's next request; the CLI says "database or disk is full". Other failures of
    the database stay the server's errors."""
    request.app.state.web.store.db.note_damage(exc)  # a damaged file: the stop vouches for nothing
    if not store_trouble(exc):
        raise exc
    why = DISK_FULL if disk_full(exc) else STORE_BUSY
    saving = request.method not in ("GET", "HEAD")
    message = f"the change was not saved: {why}" if saving else f"this page could not be shown: {why}"
    _store_faults.warning(
        "web.store_refused", exc, method=request.method, path=request.url.path, error=str(exc)
    )
    ctx = {"message": message, "who": who_is(request)}
    response = request.app.state.web.render(request, "error.html", ctx, 503)
    response.headers["Retry-After"] = "60"
    return response


def build_app(web: WebContext) -> Starlette:
    from gateway.web import account, billing, messages, metrics, operator, pages, services

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        *pages.ROUTES,
        *account.ROUTES,
        *billing.ROUTES,
        *services.ROUTES,
        *messages.ROUTES,
        *operator.ROUTES,
        *metrics.ROUTES,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    cfg = web.config.web
    names = panel_names(cfg.listen_addr[0], cfg.hostnames)
    # The headers outermost, so that every refusal carries them too; a stranger's host is refused
    # before its body is read.
    middleware = [Middleware(SecurityHeaders), Middleware(KnownHosts, names=names), Middleware(BodyCap)]
    handlers: dict[Any, Any] = dict.fromkeys(_ROUTING_ERRORS, routing_error)
    handlers[sqlite3.Error] = store_refused  # StoreBusy too
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.web = web
    return app
