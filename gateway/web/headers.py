"""The headers every answer of the panel carries, static files and errors included."""

from __future__ import annotations

from contextlib import suppress

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
# Sent on HTTPS answers only (RFC 6797 7.2): the browser then comes back over HTTPS for a year,
# so that a typed http:// address or a downgrade on the path cannot expose the session cookie. No
# includeSubDomains and no preload: other names under the domain are not the panel's to decide.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Adds the headers to every answer, static files and errors included; and ends quietly a request
    whose client left before its body was in (the panel closes slow ones, gateway/web/connections.py):
    there is no one to answer, and Starlette would log each as an error of the application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if scope.get("scheme") == "https":
                    headers.append(HSTS)
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        with suppress(ClientDisconnect):
            await self.app(scope, receive, send_with_headers)
