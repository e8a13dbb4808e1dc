"""The relay probe logs in as a send does (`gateway.mailauth`): against a relay offering CRAM-MD5 it
refuses the account with (Dovecot keeping hashed passwords) and PLAIN it takes, a probe that tried
CRAM-MD5 alone was refused at every try, backed off to an hour and never woke the mail deferred,
while every send went. Real relays (aiosmtpd with AUTH, one with STARTTLS), a real database file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from gateway.config import Config, load_config
from gateway.mailauth import LoginHeld
from gateway.mailer import SmtpRelayMailer
from gateway.relayfaults import relay_fault
from tests.certs import make_cert_pair
from tests.conftest import Sink, config_text, free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.relay_server import relay_server
from tests.test_relay_fixed_restart import deferred_outbox

CHALLENGE = "<2461.1012123456@relay.test>"


class Logins:
    """Each AUTH's mechanism by session; PLAIN and LOGIN taken while `accept`, CRAM-MD5 never."""

    def __init__(self, *, accept: bool) -> None:
        self.by_session: dict[tuple[str, int], list[str]] = {}
        self.accept = accept

    def note(self, session: Any, mechanism: str) -> None:
        self.by_session.setdefault(session.peer, []).append(mechanism)

    def __call__(self, _server: Any, session: Any, _envelope: Any, mechanism: str, _data: Any) -> AuthResult:
        self.note(session, mechanism)
        return AuthResult(success=self.accept, handled=False)

    def sessions(self) -> list[list[str]]:
        return list(self.by_session.values())


def relay_class(logins: Logins) -> type[SMTP]:
    class CramRelay(SMTP):
        """Offers CRAM-MD5 besides PLAIN and LOGIN, and refuses every account with it (535)."""

        async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
            logins.note(self.session, "CRAM-MD5")
            await self.challenge_auth(CHALLENGE)
            return AuthResult(success=False, handled=False)

    return CramRelay


@asynccontextmanager
async def cram_relay(port: int, logins: Logins, tls: tuple[Path, Path] | None = None) -> AsyncIterator[Sink]:
    async with relay_server(port, relay_class(logins), logins, starttls=tls) as sink:
        yield sink


def login_config(tmp_path: Path, port: int, smsc_port: int = 1) -> Config:
    text = config_text(tmp_path, smsc_port=smsc_port, relay_port=port)
    anchor = f'relay = "127.0.0.1:{port}"\n'
    text = text.replace(anchor, anchor + 'relay_username = "gw"\nrelay_password = "right"\n', 1)
    (tmp_path / "config.toml").write_text(text)
    return load_config(tmp_path / "config.toml")


def mailer(tmp_path: Path, port: int, password: str) -> SmtpRelayMailer:
    return SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", password)


async def test_a_first_probe_goes_on_past_a_refused_cram_md5_then_tries_plain_first(tmp_path: Path) -> None:
    port = free_port()
    logins = Logins(accept=True)
    relay = mailer(tmp_path, port, "right")
    try:
        async with cram_relay(port, logins):
            await relay.probe()  # in clear CRAM-MD5 goes first, refused; then PLAIN, as a send's login
            await relay.probe()  # the mechanism taken last goes first: no failed login
            await relay.send("gw@gw.test", "u@acme.example", b"Subject: x\r\n\r\nx\r\n")
    finally:
        await relay.close()
    assert logins.sessions() == [["CRAM-MD5", "PLAIN"], ["PLAIN"], ["PLAIN"]]
    assert relay.logins.held is None


async def test_a_probe_after_a_send_tries_the_mechanism_the_send_logged_in_with(tmp_path: Path) -> None:
    port = free_port()
    logins = Logins(accept=True)
    relay = mailer(tmp_path, port, "right")
    try:
        async with cram_relay(port, logins):
            await relay.send("gw@gw.test", "u@acme.example", b"Subject: x\r\n\r\nx\r\n")
            await relay.probe()
    finally:
        await relay.close()
    assert logins.sessions() == [["CRAM-MD5", "PLAIN"], ["PLAIN"]]


async def test_a_wrong_password_costs_a_first_probe_each_mechanism_then_one_a_probe(tmp_path: Path) -> None:
    port = free_port()
    logins = Logins(accept=False)
    now = [0.0]
    relay = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", "wrong", clock=lambda: now[0])
    try:
        async with cram_relay(port, logins):
            for _ in range(3):
                with pytest.raises(Exception) as refused:
                    await relay.probe()
                assert relay_fault(refused.value) == "login refused"
                with pytest.raises(LoginHeld):  # before the probes' back-off after those: no login
                    await relay.probe()
                now[0] = relay.logins.next_login_at()
            # A send after a refused login says that refusal without logging in (`RelayLogins`).
            with pytest.raises(Exception) as refused:
                await relay.send("gw@gw.test", "u@acme.example", b"Subject: x\r\n\r\nx\r\n")
            assert relay_fault(refused.value) == "login refused"
    finally:
        await relay.close()
    # The first probe as a first send, every mechanism; then one a probe, the next after each
    # refusal; the send none.
    assert logins.sessions() == [["CRAM-MD5", "PLAIN", "LOGIN"], ["CRAM-MD5"], ["PLAIN"]]


async def test_on_a_tls_session_plain_goes_before_cram_md5(tmp_path: Path) -> None:
    port = free_port()
    logins = Logins(accept=True)
    relay = mailer(tmp_path, port, "right")
    try:
        async with cram_relay(port, logins, tls=make_cert_pair(tmp_path / "tls")):
            await relay.probe()
            await relay.send("gw@gw.test", "u@acme.example", b"Subject: x\r\n\r\nx\r\n")
    finally:
        await relay.close()
    assert logins.sessions() == [["PLAIN"], ["PLAIN"]]


async def test_mail_deferred_goes_once_probed_at_a_relay_whose_cram_md5_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY", 0.01)  # the probe after the refused one
    port = free_port()
    logins = Logins(accept=True)
    async with HappySMSC() as smsc, cram_relay(port, logins) as sink:
        cfg = login_config(tmp_path, port, smsc.port)
        down, _grey = deferred_outbox(cfg)  # each deferred for the relay down, most of an hour to wait
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: len(sink.messages) >= len(down))
    assert sorted(rcpt for _, (rcpt,), _ in sink.messages) == [f"u{n}@acme.example" for n in range(3)]
