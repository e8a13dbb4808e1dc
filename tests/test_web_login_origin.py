"""Login CSRF without Sec-Fetch-Site: the login's Origin, else its Referer, must be the panel's.

Only `Sec-Fetch-Site` told a login posted from another site's page (another port on the panel's host,
a subdomain: they can set the pre-login cookie, so the token cannot tell) from the panel's own: a
browser or proxy that drops the header (Safari before 16.4, Firefox before 90, some corporate
proxies) let such a login through, logging the admin's browser in as the attacker's user. Through
the real server on 127.0.0.1 with a real HTTP client, each login on a new client (its own pre-login
cookie and token), as a browser without `Sec-Fetch-Site` sends it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from markupsafe import escape

from gateway.web.loginsite import ANOTHER_SITE, HIDDEN, PROXY_PORT
from gateway.web.server import WebServer
from tests.web_helpers import ADMIN, HOST, PASSWORD, csrf_of, panel_store, web_context


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[int]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')  # [web] hostnames: panel.test, panel
    server = WebServer(web)
    port = await server.start()
    try:
        yield port
    finally:
        await server.stop()
        web.counts.close()
        store.close()


async def login(port: int, headers: dict[str, str], host: str | None = None) -> httpx.Response:
    """A login from a new browser: its login page, then the form posted with `headers`; `host` is the
    Host the browser (or a proxy) names."""
    extra = {"host": host} if host else {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=extra) as c:
        page = await c.get("/login")
        data = {"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)}
        return await c.post("/login", data=data, headers=headers)


async def test_a_login_from_another_origin_is_refused_without_sec_fetch_site(tmp_path: Path) -> None:
    async with served(tmp_path) as port:
        own = f"http://127.0.0.1:{port}"
        refused = {
            "another port of the panel's host": {"origin": "http://127.0.0.1:8081"},
            "another site": {"origin": "https://evil.example"},
            "its https on another port": {"origin": f"https://127.0.0.1:{port + 1}"},
            "a page's address on another port": {"referer": "http://127.0.0.1:8081/attack.html"},
            "an Origin no URL": {"origin": "javascript:alert(1)"},
        }
        for why, headers in refused.items():
            r = await login(port, headers)
            assert r.status_code == 403 and escape(ANOTHER_SITE) in r.text, why
        # A page that hid its address (referrerpolicy=no-referrer, a sandboxed frame): Origin: null.
        r = await login(port, {"origin": "null"})
        assert r.status_code == 403 and escape(HIDDEN) in r.text

        taken = {
            "its own page": {"origin": own},
            "its own page, Origin hidden but Referer sent": {"origin": "null", "referer": own + "/login"},
            "its own page, Referer only": {"referer": own + "/login?next=/users"},
            "a command-line client (curl, a script): neither": {},
            "a browser that sends Sec-Fetch-Site, which decides": {"sec-fetch-site": "same-origin"},
        }
        for why, headers in taken.items():
            r = await login(port, headers)
            assert r.status_code == 303, (why, r.text)


async def test_the_panels_names_are_its_origins(tmp_path: Path) -> None:
    async with served(tmp_path) as port:
        # Opened by a name it answers to, on its port.
        r = await login(port, {"origin": f"http://{HOST}:{port}"}, host=f"{HOST}:{port}")
        assert r.status_code == 303
        r = await login(port, {"origin": f"http://panel:{port}"}, host=f"{HOST}:{port}")
        assert r.status_code == 403  # another of its names is another origin to a browser
        # Behind a TLS proxy that passes its own Host on: a name of [web] hostnames on https's port.
        assert (await login(port, {"origin": f"https://{HOST}"})).status_code == 303
        assert (await login(port, {"referer": f"https://{HOST}/login"})).status_code == 303
        assert (await login(port, {"origin": f"https://{HOST}:443"})).status_code == 303
        assert (await login(port, {"origin": "https://sub.panel.test"})).status_code == 403
        # Host without a port: the browser's scheme's own port; an http:// page is no https panel's.
        assert (await login(port, {"origin": f"https://{HOST}"}, host=HOST)).status_code == 303
        assert (await login(port, {"origin": f"http://{HOST}:8080"}, host=HOST)).status_code == 403


async def test_a_tls_proxy_on_another_port_is_told_to_pass_the_browsers_host(tmp_path: Path) -> None:
    """https://panel.test:8443 through a proxy that passes the backend's Host, or the name alone (nginx's
    `proxy_set_header Host $host`): refused, as any port of the name would take another port's page,
    and the page says what the proxy must pass instead; passed with its port, taken."""
    async with served(tmp_path) as port:
        hint = escape(PROXY_PORT.format(origin=f"https://{HOST}:8443"))
        for host in (None, HOST):
            r = await login(port, {"origin": f"https://{HOST}:8443"}, host=host)
            assert r.status_code == 403 and hint in r.text, host
            r = await login(port, {"referer": f"https://{HOST}:8443/login"}, host=host)
            assert r.status_code == 403 and hint in r.text, host
        # nginx's `proxy_set_header Host $http_host`: the browser's Host, its port included.
        assert (await login(port, {"origin": f"https://{HOST}:8443"}, host=f"{HOST}:8443")).status_code == 303
        r = await login(port, {"origin": f"https://{HOST}:8444"}, host=f"{HOST}:8443")
        assert r.status_code == 403 and escape(ANOTHER_SITE) in r.text  # another port of the name
        r = await login(port, {"origin": "https://elsewhere.example:8443"}, host=HOST)
        assert r.status_code == 403 and escape(ANOTHER_SITE) in r.text  # not one of its names
