"""A form posted after its session ran out: kept for its own user's login, its page then filled in.

The form is not taken (there is no session to check its CSRF token against) and nothing is sent or
changed: the login page says so and carries the kept form's token (gateway/web/keptforms.py). After
that user's login the form's page shows it filled in again (gateway/web/refill.py), once, for its
user to check and send; never sent by itself. A form another site's page posted carries no session
cookie at all (SameSite=Strict), however alive the session: it is answered as what it is, not as a
session that ended.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from gateway.web.cookies import cookie
from gateway.web.formtext import file_field, text
from gateway.web.keptforms import Kept, fields_kept
from gateway.web.loginsite import refused as from_elsewhere
from gateway.web.refill import place, refill
from gateway.web.security import SESSION_COOKIE, SESSION_ENDED, Session, form_page, local_path, same

ANOTHER_SITE = (
    "this form came from a page of another site, so it was not sent and nothing was changed:"
    " to do this, use the form on the panel's own page"
)


def target(request: Request) -> str:
    """Where the form was posted, its path and query as the browser sent them."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def page_of(request: Request) -> str | None:
    """The page to show the form again on: the one it was posted from, else (no Referer of the panel)
    the page it was posted to, which for the panel's own forms is the same page; None when that is
    no page (a form posted elsewhere, such as a message's Cancel): the form is then not kept, and
    the login page does not say it is (the login went to the dashboard, and the form was lost)."""
    if (page := form_page(request)) is not None:
        return page
    scope = {"type": "http", "method": "GET", "path": request.url.path, "root_path": ""}
    if any(route.matches(scope)[0] is Match.FULL for route in request.app.routes):
        return local_path(target(request))
    return None


async def form_after_session(request: Request) -> Response:
    """The login page for a form posted with a session that ran out, the form kept when the session's
    user is still who it was (the same password and role) and may still log in to the panel, and the
    form carries that session's token: a page of another origin of the same site (another port) can
    send the lapsed cookie with its own form, but cannot read the token, so it cannot plant forms
    that push the user's own out."""
    from gateway.web.app import login_form  # it imports the security module, which imports this

    web = request.app.state.web
    if not cookie(request, SESSION_COOKIE) and from_elsewhere(request) is not None:
        # A form another site's page posted: the session cookie (SameSite=Strict) never goes with it,
        # however alive the session is in this browser. "Your session had ended" sent an admin who
        # was logged in to log in again, and the form was not theirs to keep anyway.
        return web.render(request, "error.html", {"message": ANOTHER_SITE, "who": None}, 403)
    page = page_of(request)
    token = ""
    lapsed = web.sessions.lapsed(cookie(request, SESSION_COOKIE))
    user = web.store.accounts.find_user(lapsed.email) if lapsed is not None else None
    panel = user is not None and user.role in ("admin", "operator")
    if page is not None and lapsed is not None and user is not None and panel and lapsed.current(user):
        form = await request.form()
        # A form with a file part is not the page's: not kept (and its token not read as text).
        mine = await file_field(form) is None and same(text(form, "csrf"), lapsed.csrf)
        fields = fields_kept(form.multi_items()) if mine else None
        if fields:
            at = web.sessions.clock()
            token = web.sessions.kept.put(Kept(user.id, user.email, page, target(request), fields, at))
    return await login_form(request, SESSION_ENDED, 401, page or "/", ended=True, kept=token)


def put_back(request: Request, session: Session, response: Response) -> Response:
    """The page `response` with the session's kept form filled in, when it is that form's page; the
    kept form is then given up, shown or not (its form gone meanwhile), and so when it is stale."""
    kept = session.kept
    if kept is None:
        return response
    if not request.app.state.web.sessions.kept.fresh(kept):
        session.kept = None
        return response
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    body = getattr(response, "body", None)
    html = response.headers.get("content-type", "").startswith("text/html")
    if place(here) != place(kept.page) or response.status_code != 200 or not html or body is None:
        return response
    session.kept = None
    filled = refill(bytes(body).decode("utf-8"), kept.action, kept.fields)
    if filled is None:
        return response
    response.body = filled.encode("utf-8")
    response.headers["content-length"] = str(len(response.body))
    return response
