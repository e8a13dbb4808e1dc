"""Whether a login was posted from the panel's own page (login CSRF).

A page of another origin of the same site (another port on the panel's host, a subdomain) can set the
pre-login cookie and post its own credentials with it, logging the admin's browser in as the
attacker's user: the double-submit token cannot tell. The browser can: `Sec-Fetch-Site` says where a
request came from. Browsers and proxies that drop it (Safari before 16.4, Firefox before 90, some
corporate proxies) still send `Origin` with a form's POST, and the `Referer` of a panel page (its
policy is same-origin); so without `Sec-Fetch-Site` the login's `Origin`, else its `Referer`, must be
the panel: the address the browser asked for (its Host), or a name in `[web] hostnames` on its
scheme's own port (a reverse proxy that passes another Host on). An `Origin: null` without a
`Referer` (a page that hid its address) is refused. A login with none of the three is a command-line
client's (curl, a script): no browser posts a form across sites without `Origin`, except ones as old
as Firefox 69, and it still needs the pre-login cookie and token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from gateway.web.hosts import parse_host

ANOTHER_SITE = "the login came from a page of another site: log in on the panel's own page"
HIDDEN = (
    "the browser did not say which page the login came from (Origin: null, no Referer): log in on"
    " the panel's own page, or allow it to send the panel's address"
)
PROXY_PORT = (
    "the login came from {origin}, a port of the panel's name that the address the panel was reached by"
    " does not show: a proxy on that port must pass the browser's Host on, its port included (nginx:"
    " proxy_set_header Host $http_host)"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _own(url: str, request: Request) -> bool:
    """Whether `url` (an Origin or Referer) is of the panel as the browser reached it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return False
    on_default = port is None or port == _DEFAULT_PORTS[scheme]
    asked, asked_port = parse_host(request.headers.get("host", "")) or ("", None)
    if host == asked.lower().rstrip("."):
        if asked_port is not None:
            return (port or _DEFAULT_PORTS[scheme]) == asked_port
        # No port in Host: the browser's scheme's own, and a plain http:// page is not an https
        # panel's (a TLS proxy not in `trusted_proxies` shows the panel http).
        return on_default and scheme in (request.url.scheme, "https")
    names = {n.lower().rstrip(".") for n in request.app.state.web.config.web.hostnames}
    return host in names and on_default and scheme in (request.url.scheme, "https")


def _elsewhere(url: str, request: Request) -> str:
    """Why `url`, not the panel's, is refused: a name of `[web] hostnames` on a port other than its
    scheme's, reached by a Host without that port, is a TLS proxy on another port (8443) that passes
    the backend's Host or its name alone (nginx's `$host`): refused all the same (any port of the
    name would take another port's page, the very login this stops), but the page says what to set."""
    parts = urlsplit(url)
    host, scheme = (parts.hostname or "").rstrip("."), parts.scheme.lower()
    names = {n.lower().rstrip(".") for n in request.app.state.web.config.web.hostnames}
    asked, asked_port = parse_host(request.headers.get("host", "")) or ("", None)
    passed = asked.lower().rstrip(".") == host and asked_port is not None
    try:
        other_port = parts.port not in (None, _DEFAULT_PORTS.get(scheme))
    except ValueError:
        return ANOTHER_SITE
    if host in names and scheme in _DEFAULT_PORTS and other_port and not passed:
        return PROXY_PORT.format(origin=f"{scheme}://{host}:{parts.port}")
    return ANOTHER_SITE


def refused(request: Request) -> str | None:
    """Why a login must be refused as posted from elsewhere, None when it came from the panel."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return None if site in ("same-origin", "none") else ANOTHER_SITE
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return None if _own(origin, request) else _elsewhere(origin, request)
    referer = request.headers.get("referer")
    if referer:
        return None if _own(referer, request) else _elsewhere(referer, request)
    return HIDDEN if origin == "null" else None
