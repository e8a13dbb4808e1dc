"""A listen address of "[::]" takes both stacks, and an IPv4 client there is its IPv4 address.

The SMTP ports forced IPv6 only on "[::]": a company's MTA on IPv4 was refused while the panel on the
same "[::]" answered it. The panel took IPv4 on a dual-stack socket, where its proxy on 127.0.0.1
arrived as ::ffff:127.0.0.1 and was not believed: X-Forwarded-For and -Proto were ignored, so every
failed login counted against the proxy (anyone locked every admin out) and the cookie lost Secure.
Real sockets throughout: the daemon's relay and submission ports, the panel's server over HTTP.
"""

from __future__ import annotations

import asyncio
import signal
import smtplib
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from gateway.config import parse_config
from gateway.web.security import SESSION_COOKIE
from gateway.web.server import WebServer
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw, start_daemon
from tests.web_helpers import ADMIN, PASSWORD, csrf_of, panel_store, web_context


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6(), reason="this machine has no IPv6 (::1 cannot be bound)")


def _ehlo(host: str, port: int) -> int:
    with smtplib.SMTP(host, port, timeout=10) as client:
        return client.ehlo()[0]


def _rcpt(host: str, port: int, rcpt: str) -> int:
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.ehlo()
        client.mail("anna@acme.example")
        return client.rcpt(rcpt)[0]


@needs_ipv6
@pytest.mark.parametrize("intake_processes", [0, 1])
async def test_smtp_on_ipv6_any_takes_ipv4_clients_as_their_ipv4_address(
    tmp_path: Path, intake_processes: int
) -> None:
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port).replace(
            'listen = "127.0.0.1:0"\nsubmission_listen = "127.0.0.1:0"',
            f'listen = "[::]:0"\nsubmission_listen = "[::]:0"\nintake_processes = {intake_processes}',
        )
        assert 'listen = "[::]:0"' in text
        config = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(config) as gw:
            # From 127.0.0.1, inside the account's relay_networks (127.0.0.0/8): relayed, so the
            # relay port saw 127.0.0.1, not ::ffff:127.0.0.1.
            res = await gw.send(mail(f"601123456@{DOMAIN}", "over IPv4 to [::]"))
            assert res.error is None and not res.refused, res
            await smsc.wait_for(1, timeout=20)
            # From ::1, outside them: served, and refused as the stranger it is.
            code = await asyncio.to_thread(_rcpt, "::1", gw.port, f"601123456@{DOMAIN}")
            assert 500 <= code < 600, code
            # The submission port answers both stacks too.
            port = gw.daemon.submission_port
            assert await asyncio.to_thread(_ehlo, "127.0.0.1", port) == 250
            assert await asyncio.to_thread(_ehlo, "::1", port) == 250
            assert len(smsc.received) == 1


async def _login(
    c: httpx.AsyncClient, forwarded_for: str, password: str, proto: str = "http", email: str = ADMIN
) -> httpx.Response:
    """A login through the proxy for the browser at `forwarded_for` (the form's cookie sent by hand:
    behind the proxy over HTTPS it is Secure, and the proxy speaks plain HTTP to the panel)."""
    headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": proto}
    page = await c.get("/login", headers=headers)
    form_cookie = page.headers["set-cookie"].split(";")[0]
    data = {"email": email, "password": password, "csrf": csrf_of(page.text)}
    c.cookies.clear()
    return await c.post("/login", data=data, headers={**headers, "cookie": form_cookie})


@needs_ipv6
async def test_panel_on_ipv6_any_believes_its_proxy_on_127_0_0_1(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "[::]:0"\ntrusted_proxies = ["127.0.0.1"]\n')
    server = WebServer(web)
    port = await server.start()
    try:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=transport) as c:
            # 22 failed logins (each for another login, not to lock one login), each from another
            # browser behind the proxy: none is the proxy's.
            for n in range(22):
                r = await _login(c, f"198.51.100.{n + 1}", "wrong password", email=f"guess{n}@acme.example")
                assert r.status_code != 303
            # The admin, from an address of its own, over HTTPS at the proxy: in, with a Secure cookie.
            r = await _login(c, "203.0.113.7", PASSWORD, proto="https")
            assert r.status_code == 303, (r.status_code, r.text[:300])
            cookie = next(v for v in r.headers.get_list("set-cookie") if SESSION_COOKIE in v.split("=")[0])
            assert "secure" in cookie.lower(), cookie
            assert r.headers.get("strict-transport-security") or (
                await c.get("/static/style.css", headers={"X-Forwarded-Proto": "https"})
            ).headers.get("strict-transport-security")
        # Not the proxy, over IPv6: its X-Forwarded-Proto is nobody's word.
        v6 = httpx.AsyncHTTPTransport(local_address="::1")
        async with httpx.AsyncClient(base_url=f"http://[::1]:{port}", transport=v6) as c:
            r = await _login(c, "203.0.113.8", PASSWORD, proto="https")
            assert r.status_code == 303
            cookie = next(v for v in r.headers.get_list("set-cookie") if SESSION_COOKIE in v.split("=")[0])
            assert "secure" not in cookie.lower(), cookie
    finally:
        await server.stop()
        web.counts.close()
        store.close()


def _checked(tmp_path: Path, listen: str, relay_port: int | None = None) -> subprocess.CompletedProcess[str]:
    text = config_text(tmp_path, smsc_port=free_port(), relay_port=relay_port).replace(
        '\nlisten = "127.0.0.1:0"', f'\nlisten = "{listen}"', 1
    )
    assert f'listen = "{listen}"' in text
    path = tmp_path / "config.toml"
    path.write_text(text)
    return smsgw(path, "check-config")


def test_check_config_refuses_a_listen_address_no_socket_takes(tmp_path: Path) -> None:
    # It passed check-config, then the start failed with EINVAL.
    port = free_port()
    res = _checked(tmp_path, f"[::ffff:127.0.0.1]:{port}")
    assert res.returncode != 0, res
    assert "cannot be listened on" in res.stderr and f'write "127.0.0.1:{port}"' in res.stderr, res.stderr
    assert _checked(tmp_path, f"[::]:{port}").returncode == 0


def test_check_config_knows_the_ipv6_wildcard_takes_ipv4_too(tmp_path: Path) -> None:
    # "[::0]" is "[::]", which takes 127.0.0.1 as it is bound: a relay there is the gateway itself.
    port = free_port()
    res = _checked(tmp_path, f"[::0]:{port}", relay_port=port)
    assert res.returncode != 0 and "own [smtp] listen" in res.stderr, res.stderr


@needs_ipv6
async def test_smsgw_send_reaches_ipv6_any_from_ipv4_as_the_demo_account_allows(tmp_path: Path) -> None:
    # "[::]" takes IPv4 now; `smsgw send` still went from ::1, outside the shipped demo account's
    # 127.0.0.0/8: refused 550, exit 1, with a hint to add ::1/128.
    smtp_port = free_port()
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port)
    text = text.replace(f'listen = "127.0.0.1:{smtp_port}"', f'listen = "[::]:{smtp_port}"')
    assert f'listen = "[::]:{smtp_port}"' in text
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    proc = await start_daemon(config, smtp_port)
    try:
        res = await asyncio.to_thread(smsgw, config, "send", "+48601123458", "over the wildcard")
        assert res.returncode == 0, (res.stdout, res.stderr)
        assert "queued as" in res.stdout, res.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
