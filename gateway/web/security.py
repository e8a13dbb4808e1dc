"""Who is asking: login sessions, CSRF tokens and the headers every answer carries.

Sessions live in memory (a restart logs everyone out, which costs nothing on an admin panel) and
are looked up by a random cookie that is HttpOnly, SameSite=Strict and Secure when the browser came
over HTTPS (the panel's TLS or a trusted proxy's), then named with the `__Host-` prefix
(gateway/web/cookies.py). A session ends after `IDLE_MINUTES` without a
request and at the latest `[web] session_hours` after the login; one login holds at most
`MAX_PER_LOGIN` of them, so that nobody's logins push out anyone else's (the next login ends the
one idle longest, never the one in use). Every request re-reads the user's row, so that removing a
user, changing their role or setting a new password (by anyone, in the panel or with the CLI) ends
their sessions at once: a session holds a digest of the password hash it was opened with and the
user's `role_key`, which every change of the role draws anew. A role taken away and given back
before the session's next request has still ended it (the role alone looked as it did at login).
Each form carries a token: the session's for logged-in pages and, for the login form itself, one
bound to a short-lived pre-login cookie (double submit).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from acl.passwords import password_stamp
from gateway.store.accounts import User
from gateway.web.cookies import cookie
from gateway.web.cookies import https as https
from gateway.web.cookies import set_cookie as set_cookie
from gateway.web.formtext import NotText, file_field, sent_as_file, text
from gateway.web.headers import CSP as CSP
from gateway.web.headers import HEADERS as HEADERS
from gateway.web.headers import HSTS as HSTS
from gateway.web.headers import SecurityHeaders as SecurityHeaders
from gateway.web.keptforms import Kept, KeptForms

SESSION_COOKIE = "smsgw_session"
LOGIN_COOKIE = "smsgw_login"
# Memory's bound. Not the only one: one login that filled the table (a company admin logging in
# in a loop) used to push out everyone's oldest sessions, the operator's included.
MAX_SESSIONS = 10_000
# Sessions one login keeps: a browser per device or two, with room to spare; the next login of the
# same user ends that user's least recently used, nobody else's.
MAX_PER_LOGIN = 20
# A panel left open on a shared PC logs out after this long without a request. `[web] session_hours`
# stays the most any session lasts, however busy. (Proposed as `[web] idle_minutes`.)
IDLE_MINUTES = 30
# A credential-making action (a new login, admin or operator, or another's password) needs the admin's
# own password, unless the session gave it this recently (gateway/web/sudo.py): GitHub's "sudo mode".
SUDO_MINUTES = 10
# What a session remembers of its saves, for the page each one redirects to (reloaded, or reached
# again with Back): a few of the latest, the oldest forgotten first.
MAX_NOTICES = 8
# The longest panel address a login carries back to (`?next=`): an address of the panel's own links
# is far shorter, and the rest of a longer one would be cut anyway.
MAX_NEXT = 2000
# How long the owner of a session that ran out is still known by its cookie: a form posted with it
# (after lunch, or the next morning) is then kept for that user's next login (gateway/web/keptforms.py).
LAPSED_HOURS = 24

SESSION_ENDED = "your session had ended, so the form was not sent: please log in, then send it again"


@dataclass(slots=True)
class Session:
    email: str
    csrf: str
    expires: float  # opened + session_hours: the most it lasts
    stamp: str  # `password_stamp` of the login's password when the session was opened
    seen: float  # the last request: idle past `Sessions.idle`, it ends
    role_key: str | None  # the user's `role_key` at login: a change of role since ends the session
    notices: dict[str, str] = field(default_factory=dict)  # `?done=` key -> what a save did
    confirmed_at: float | None = None  # when the admin last gave their own password in this session
    kept: Kept | None = None  # a form posted after the last session ran out, for its page to show again

    def current(self, user: User) -> bool:
        """Still the password and the role the session was opened with: a new password ends every
        older session, and so does any change of the role since, even one undone before this
        request (the role's key is new at each change, in the panel or by `smsgw user set`)."""
        same_password = hmac.compare_digest(self.stamp, password_stamp(user.password_hash))
        return same_password and self.role_key == user.role_key


@dataclass(frozen=True, slots=True)
class Who:
    """The logged-in user as a handler sees it; `scope` is None only for the operator."""

    user: User
    csrf: str
    session: Session | None = field(default=None, compare=False)  # None where a test makes one by hand

    @property
    def operator(self) -> bool:
        return self.user.role == "operator"

    @property
    def scope(self) -> int | None:
        return None if self.operator else self.user.account_id

    def sees(self, account_id: int | None) -> bool:
        return self.operator or account_id == self.user.account_id


class Sessions:
    """The open sessions, by token and by login (its tokens, least recently used first: each request
    moves its session to the end, so that a full login gives up the one idle longest; by the time
    of the login instead, the 21st login ended the session in use and kept forgotten ones)."""

    def __init__(
        self,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
        idle_seconds: float = IDLE_MINUTES * 60,
    ) -> None:
        self.lifetime = lifetime_seconds
        self.idle = idle_seconds
        self.clock = clock
        self._by_token: dict[str, Session] = {}
        self._by_login: dict[str, dict[str, None]] = {}
        self._lapsed: dict[str, Session] = {}  # sessions that ran out, by token, the oldest first
        self.kept = KeptForms(lambda: self.clock())

    def start(self, user: User) -> str:
        """A new session of `user` as just read for its login: its password and role key are what
        every later request of the session must still find."""
        now = self.clock()
        email = user.email
        mine = self._by_login.setdefault(email.lower(), {})
        while len(mine) >= MAX_PER_LOGIN:
            self.end(next(iter(mine)))
        if len(self._by_token) >= MAX_SESSIONS:
            for token in [t for t, s in self._by_token.items() if not self._live(s, now)]:
                self._lapse(token)
        if len(self._by_token) >= MAX_SESSIONS:
            # Still full of live sessions: the login holding the most gives up its least used.
            busiest = max(self._by_login.values(), key=len)
            self.end(next(iter(busiest)))
        token = secrets.token_urlsafe(32)
        self._by_token[token] = Session(
            email=email,
            csrf=secrets.token_urlsafe(32),
            expires=now + self.lifetime,
            stamp=password_stamp(user.password_hash),
            seen=now,
            role_key=user.role_key,
        )
        self._by_login.setdefault(email.lower(), {})[token] = None
        return token

    def _live(self, s: Session, now: float) -> bool:
        return now < s.expires and now < s.seen + self.idle

    def get(self, token: str | None) -> Session | None:
        """The session, None once it expired or sat idle too long. Its idle time is left alone:
        only a request the session is still good for restarts it (`touch`), so that a cookie its
        user may no longer use is not kept alive by being sent."""
        s = self._by_token.get(token or "")
        if s is None:
            return None
        if not self._live(s, self.clock()):
            self._lapse(token or "")
            return None
        return s

    def _lapse(self, token: str) -> None:
        """End a session that ran out, its owner remembered for `lapsed` (for `LAPSED_HOURS`, and no more
        of them than of sessions)."""
        s = self._by_token.get(token)
        self.end(token)
        if s is not None:
            self._lapsed[token] = s
            while len(self._lapsed) > MAX_SESSIONS:
                del self._lapsed[next(iter(self._lapsed))]

    def lapsed(self, token: str | None) -> Session | None:
        """The session `token` was, if it ran out (idle, or past `session_hours`) within `LAPSED_HOURS`:
        whose form a request made with it carries. None for a live, unknown or ended one (a logout)."""
        now = self.clock()
        s = self._by_token.get(token or "") or self._lapsed.get(token or "")
        if s is None or self._live(s, now):
            return None
        return s if now - min(s.expires, s.seen + self.idle) < LAPSED_HOURS * 3600 else None

    def touch(self, token: str) -> None:
        """A request the session was good for: its idle time starts afresh, and the login's next
        session beyond `MAX_PER_LOGIN` ends another one before it."""
        s = self._by_token.get(token)
        if s is None:
            return
        s.seen = self.clock()
        mine = self._by_login[s.email.lower()]
        del mine[token]
        mine[token] = None  # the most recently used, the last to go

    def end(self, token: str | None) -> None:
        s = self._by_token.pop(token or "", None)
        if s is None:
            return
        mine = self._by_login.get(s.email.lower(), {})
        mine.pop(token or "", None)
        if not mine:
            self._by_login.pop(s.email.lower(), None)

    def end_login(self, email: str) -> int:
        """End every session of a login (its role changed or it was removed), how many there were.
        Its next request would end each anyway (`Session.current`): this frees them now."""
        self.kept.drop_login(email)
        tokens = list(self._by_login.get(email.lower(), {}))
        for token in tokens:
            self.end(token)
        return len(tokens)

    def confirm(self, session: Session) -> None:
        """The admin just gave their own password: credential-making actions need it again only
        `SUDO_MINUTES` from now. Kept here, server-side, where the client cannot set it."""
        session.confirmed_at = self.clock()

    def confirmed(self, session: Session | None) -> bool:
        """Whether `session` gave its admin's password within the last `SUDO_MINUTES`."""
        if session is None or session.confirmed_at is None:
            return False
        return 0 <= self.clock() - session.confirmed_at < SUDO_MINUTES * 60

    def keep(self, token: str | None, password_hash: str | None) -> None:
        """This session stays open across its own user's new password (the others' end)."""
        s = self._by_token.get(token or "")
        if s is not None:
            s.stamp = password_stamp(password_hash)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets, both present. Compared as bytes: compare_digest
    raises on a str with non-ASCII characters, and a forged token or header may hold any."""
    if not (a and b):
        return False
    return hmac.compare_digest(
        str(a).encode("utf-8", "surrogatepass"), str(b).encode("utf-8", "surrogatepass")
    )


class Forbidden(Exception):
    """An authenticated user asked for something their role does not allow (403)."""


class NotYours(Exception):
    """Missing, or another account's: answered the same (404), so that ids cannot be probed."""


Handler = Callable[..., Awaitable[Response]]


def who_is(request: Request) -> Who | None:
    """The logged-in admin or operator behind the request, None for anyone else: the guard of every
    page, and the menu of the error pages (a 404 showed a logged-in admin "Log in" and no menu)."""
    web = request.app.state.web
    token = cookie(request, SESSION_COOKIE) or ""
    session = web.sessions.get(token)
    if session is None:
        return None
    user = web.store.accounts.find_user(session.email)
    if user is None or user.role not in ("admin", "operator") or not session.current(user):
        # Ended, not only refused: a role given back revived the old cookie and its CSRF token,
        # and each refused request kept it from going idle. A new login is the way back.
        web.sessions.end(token)
        return None
    web.sessions.touch(token)
    return Who(user, session.csrf, session)


def local_path(value: str | None) -> str:
    """Where a login goes on to: a path of this panel, else the dashboard. Anything a browser could
    read as another site is refused: `//host` and `/\\host` (browsers read both as a host), a scheme,
    and control characters and spaces (browsers drop a tab or line break from an address, so
    `/<TAB>/host` is `//host` to them)."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(not ("!" <= c <= "~") for c in value):
        return "/"
    return value


def login_url(request: Request) -> str:
    """The login page, carrying the address asked for (its path and query, as the browser sent them)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    target = raw.decode("latin-1")
    if query := request.scope.get("query_string", b""):
        target += "?" + query.decode("latin-1")
    target = local_path(target)
    return "/login" if target == "/" else "/login?" + urlencode({"next": target}, safe="/")


def form_page(request: Request) -> str | None:
    """The page a form was posted from (its Referer, which `same-origin` sends for the panel's own
    pages), for a form posted after the session ended: the login goes back there. None without a
    Referer of the panel (a browser or an extension that strips it, a proxy passing another Host)."""
    ref = urlsplit(request.headers.get("referer", ""))
    if not ref.netloc or ref.netloc != request.url.netloc:
        return None
    return local_path(ref.path + (f"?{ref.query}" if ref.query else ""))


def after_post(request: Request, who: Who, done: str, path: str | None = None) -> RedirectResponse:
    """A save's answer: 303 to the page (`path`, else the one posted to, its query kept), the result
    kept in the session under a short key the URL names (`?done=`). Reloading the page, or coming
    back to it, then shows it again instead of posting the form again; the words never come from
    the URL, so a link someone else made shows nothing it says."""
    key = secrets.token_urlsafe(6)
    if who.session is not None:
        notices = who.session.notices
        notices[key] = done
        while len(notices) > MAX_NOTICES:
            del notices[next(iter(notices))]
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "done"] + [("done", key)]
    return RedirectResponse(f"{path or request.url.path}?{urlencode(query)}", status_code=303)


def notice(request: Request, who: Who) -> str:
    """What the save named by `?done=` did, as `after_post` kept it; nothing for a key it did not keep."""
    key = request.query_params.get("done", "")
    return who.session.notices.get(key, "") if who.session is not None and key else ""


def guarded(*, operator: bool = False) -> Callable[[Handler], Handler]:
    """A page for logged-in admins: 401 (or the login page for a GET, which then comes back here),
    403 for a missing role, and a valid CSRF token on every POST; the handler gets `who` and, for a
    POST, the form."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            web = request.app.state.web
            who = who_is(request)
            if who is None:
                if request.method == "GET":
                    return RedirectResponse(login_url(request), status_code=303)
                # A form sent after the session ended: nothing done, the login page says so and goes
                # back to the form's page, which shows what was typed again (gateway/web/keptforms.py).
                from gateway.web.sessionended import form_after_session  # it imports this module

                return await form_after_session(request)
            session = who.session
            assert session is not None
            if operator and not who.operator:
                return web.render(request, "error.html", {"message": "operator only", "who": who}, 403)
            kwargs: dict[str, Any] = {}
            if request.method == "POST":
                form: FormData = await request.form()
                if (sent := await file_field(form)) is not None:  # the panel's forms have no file fields
                    return web.render(request, "error.html", {"message": sent_as_file(sent), "who": who}, 400)
                if not same(text(form, "csrf"), session.csrf):
                    msg = {"message": "the form expired; reload the page and try again", "who": who}
                    return web.render(request, "error.html", msg, 403)
                kwargs["form"] = form
            try:
                response = await handler(request, who, **kwargs)
                if session.kept is not None and request.method == "GET":
                    from gateway.web.sessionended import put_back

                    response = put_back(request, session, response)
                return response
            except NotText as exc:  # `file_field` above refuses them all first: kept as a last guard
                return web.render(request, "error.html", {"message": str(exc), "who": who}, 400)
            except NotYours:
                return web.render(request, "error.html", {"message": "not found", "who": who}, 404)
            except Forbidden as exc:
                return web.render(request, "error.html", {"message": str(exc), "who": who}, 403)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
