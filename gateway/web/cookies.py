"""The panel's cookies: their flags, and over HTTPS the `__Host-` prefix on their names.

A browser keeps a `__Host-` cookie only if it is Secure, with Path=/ and no Domain: no other host can
set one for the panel's host. Under a plain name, a page of a sibling host (any other name under the
panel's site, a customer's subdomain) could set the panel's session cookie for the whole site,
Domain=example.com: the admin then worked in the attacker's session (login CSRF), or the pre-login
cookie with a token of the attacker's choosing. Over HTTPS only the prefixed name is read, so a planted
plain one is no one's. Over plain HTTP a browser refuses the prefix (it needs Secure), so the plain
names there. After an upgrade an HTTPS browser's plain cookie is not read: one new login.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

HOST_PREFIX = "__Host-"


def https(request: Request) -> bool:
    """Whether the browser reached the panel over HTTPS: the panel's own TLS, or a TLS-terminating
    proxy named in `[web] trusted_proxies` that says so in X-Forwarded-Proto (uvicorn takes the
    scheme from that header from those proxies only, gateway/web/server.py). The cookie is then
    Secure: a browser must never send it over plain HTTP, where anyone on the path reads it."""
    return request.url.scheme == "https"


def cookie_name(name: str, *, secure: bool) -> str:
    """The name a cookie is set and read by: prefixed when Secure (`__Host-smsgw_session`)."""
    return HOST_PREFIX + name if secure else name


def cookie(request: Request, name: str) -> str | None:
    """The request's cookie `name`, under the name its scheme sets: over HTTPS the prefixed one only."""
    return request.cookies.get(cookie_name(name, secure=https(request)))


def set_cookie(
    response: Response, name: str, value: str, *, secure: bool, max_age: int | None = None
) -> None:
    response.set_cookie(
        cookie_name(name, secure=secure),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def drop_cookie(response: Response, request: Request, name: str) -> None:
    """The cookie `name` deleted as it was set: a `__Host-` one only goes with Secure and Path=/."""
    secure = https(request)
    response.delete_cookie(
        cookie_name(name, secure=secure), path="/", secure=secure, httponly=True, samesite="strict"
    )
