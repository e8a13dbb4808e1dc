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
import re
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.web.bodycap import plain_answer

WILDCARDS = ("0.0.0.0", "::", "")
# RFC 7230 5.4: `uri-host [":" port]`; a name (or IPv4 address) in the letters of DNS names and hosts
# files, an IPv6 address in brackets, a port of at most five digits (its range checked apart).
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?")
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


def parse_host(header: str) -> tuple[str, int | None] | None:
    """A Host header's host (an IPv6 address without its brackets) and port, None when it is not
    RFC 7230's `uri-host [":" port]`.

    Everything before the only ':' was taken for the host, whatever followed: `localhost:1@evil.example`,
    `localhost:1, evil.example` and `localhost:99999` were answered as `localhost`, and went on to
    pages, the login's origin check and the HTTPS redirect. A name here is of the letters names are
    made of (no userinfo, no list, no spaces), an IPv6 address is bracketed and valid (no zone), and
    a port is digits of 1 to 65535."""
    m = _HOST.fullmatch(header)
    if m is None:
        return None
    port = int(m["port"]) if m["port"] is not None else None
    if port is not None and not 1 <= port <= 65535:
        return None
    if m["v6"] is not None:
        try:
            ipaddress.IPv6Address(m["v6"])
        except ValueError:
            return None
        return m["v6"], port
    return m["name"], port


def host_of(header: str) -> str:
    """The host of a Host header, without its port or brackets: `[::1]:8080` is `::1`; "" for a
    header that is no host (nothing is known by that)."""
    parsed = parse_host(header)
    return "" if parsed is None else parsed[0]


def known_host(names: frozenset[str], header: str) -> bool:
    """Whether a Host header names the panel (also asked of plain HTTP on its TLS port,
    gateway/web/plainhttp.py, before the name goes into a redirect)."""
    host = host_of(header).lower().rstrip(".")
    return bool(host) and (host in names or _is_address(host))


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
