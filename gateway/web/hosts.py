"""Which names the panel answers to: a page elsewhere must not reach it under a name of its own.

A web page the operator opens may resolve its own name to 127.0.0.1 (DNS rebinding): the browser
then sends that page's requests to the panel as the page's own origin, so that it reads their
answers. /metrics (every account's name and traffic) was read so, and /login was posted to from
127.0.0.1 until the operator's login there was locked. The Host header tells such a request apart:
it carries the page's name. The panel answers to an IP address (a browser sends one only to the
address it names, which no page can rebind), to `localhost`, to the name it listens on, on a
wildcard address to the machine's own name, and to the names in `[web] hostnames` (those a reverse
proxy passes on or a TLS certificate is for); any other is answered 400 and goes no further.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.web.bodycap import plain_answer

WILDCARDS = ("0.0.0.0", "::", "")
REFUSED = (
    b"the panel does not answer to this host name: open it by its IP address, or add the name to"
    b" [web] hostnames in the config (the name a reverse proxy passes on or its certificate is for)\n"
)


def panel_names(listen_host: str, hostnames: Iterable[str]) -> frozenset[str]:
    """The names, lower case, besides IP addresses, that the panel answers to."""
    names = {"localhost", *(n.lower().rstrip(".") for n in hostnames)}
    if listen_host in WILDCARDS:
        names.add(socket.gethostname().lower())
    elif not _is_address(listen_host):
        names.add(listen_host.lower())
    return frozenset(names)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_of(header: str) -> str:
    """The host of a Host header, without its port or brackets: `[::1]:8080` is `::1`."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def known_host(names: frozenset[str], header: str) -> bool:
    """Whether a Host header names the panel (also asked of plain HTTP on its TLS port,
    gateway/web/plainhttp.py, before the name goes into a redirect)."""
    host = host_of(header).lower().rstrip(".")
    return host in names or _is_address(host)


class KnownHosts:
    """Answers 400 to a request whose Host is not one of the panel's; a request without one (HTTP/1.0,
    which no browser sends) is let through: a rebinding page's request always names its host."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    def known(self, header: str) -> bool:
        return known_host(self.names, header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = next((v for k, v in scope["headers"] if k == b"host"), None)
            if header is not None and not self.known(header.decode("latin-1")):
                await plain_answer(send, 400, REFUSED)
                return
        await self.app(scope, receive, send)
