"""The relay probe against relays that offer mechanisms they refuse: one answering 535 to PLAIN and
taking LOGIN (some Exchange and old Sendmail setups, for every account or some), and one taking
CRAM-MD5 alone. A probe that gave up at the 535 to PLAIN was refused at every try, backed off to an
hour and never woke the mail deferred, while every send went (it tries every mechanism). A probe
tries one mechanism, the next one after a refused probe's, so the next probe finds LOGIN. Real
relays (aiosmtpd with AUTH, with STARTTLS or TLS from the connection on), a real database file.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from structlog.testing import capture_logs

from gateway.bitelog import FaultLog
from gateway.mailer import SmtpRelayMailer
from gateway.mailtls import relay_ca_file
from gateway.relayfaults import relay_fault
from gateway.relayprobe import RelayBack
from gateway.store.db import Store
from tests.certs import make_cert_pair
from tests.conftest import Sink, free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.relay_server import relay_server
from tests.test_relay_fixed_restart import deferred_outbox
from tests.test_relay_implicit_tls import mail_config
from tests.test_relay_probe_mechanism import Logins, cram_relay, login_config, mailer

PASSWORD = "right"
CHALLENGE = "<1896.697170952@relay.test>"
MAIL = b"Subject: x\r\n\r\nx\r\n"


class Takes:
    """The relay's authenticator: each AUTH's mechanism by session; only `mechanism` with the right
    password is taken, every other answered 535."""

    def __init__(self, mechanism: str) -> None:
        self.mechanism = mechanism
        self.by_session: dict[tuple[str, int], list[str]] = {}

    def note(self, session: Any, mechanism: str) -> None:
        self.by_session.setdefault(session.peer, []).append(mechanism)

    def __call__(self, _server: Any, session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.note(session, mechanism)
        right = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
        return AuthResult(success=right and mechanism == self.mechanism, handled=False)

    def sessions(self) -> list[list[str]]:
        return list(self.by_session.values())


def relay_class(takes: Takes) -> type[SMTP]:
    class CramChecking(SMTP):
        """Checks CRAM-MD5 as RFC 2195 says: the HMAC-MD5 of its challenge keyed with the password."""

        async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
            takes.note(self.session, "CRAM-MD5")
            answer = await self.challenge_auth(CHALLENGE)
            digest = hmac.new(PASSWORD.encode(), CHALLENGE.encode(), hashlib.md5).hexdigest()
            right = isinstance(answer, bytes) and answer == f"gw {digest}".encode()
            return AuthResult(success=right and takes.mechanism == "CRAM-MD5", handled=False)

    return CramChecking


@asynccontextmanager
async def picky_relay(
    port: int,
    takes: Takes,
    *,
    starttls: tuple[Path, Path] | None = None,
    implicit: tuple[Path, Path] | None = None,
    offers: tuple[str, ...] = ("CRAM-MD5", "PLAIN", "LOGIN"),
) -> AsyncIterator[Sink]:
    excluded = [m for m in ("CRAM-MD5", "PLAIN", "LOGIN") if m not in offers]
    async with relay_server(
        port, relay_class(takes), takes, excluded=excluded, starttls=starttls, implicit=implicit
    ) as sink:
        yield sink


async def test_a_first_probe_goes_on_past_a_535_to_plain_to_login_and_login_goes_first_then(
    tmp_path: Path,
) -> None:
    port = free_port()
    takes = Takes("LOGIN")
    relay = mailer(tmp_path, port, PASSWORD)
    try:
        async with picky_relay(port, takes, offers=("PLAIN", "LOGIN")):
            await relay.probe()  # PLAIN answered 535, LOGIN taken: as a send's first login
            await relay.probe()  # the mechanism taken last goes first: no failed login
            await relay.send("gw@gw.test", "u@acme.example", MAIL)
    finally:
        await relay.close()
    assert takes.sessions() == [["PLAIN", "LOGIN"], ["LOGIN"], ["LOGIN"]]


async def test_a_send_and_a_probe_log_in_alike_at_a_relay_refusing_plain(tmp_path: Path) -> None:
    port = free_port()
    takes = Takes("LOGIN")
    sending, probing = mailer(tmp_path, port, PASSWORD), mailer(tmp_path, port, PASSWORD)
    try:
        async with picky_relay(port, takes, offers=("PLAIN", "LOGIN")):
            await sending.send("gw@gw.test", "u@acme.example", MAIL)
            await probing.probe()  # knows nothing taken yet: PLAIN, refused, then LOGIN
            await probing.probe()  # the one taken
            await sending.probe()
    finally:
        await sending.close()
        await probing.close()
    assert takes.sessions() == [["PLAIN", "LOGIN"], ["PLAIN", "LOGIN"], ["LOGIN"], ["LOGIN"]]


async def test_over_starttls_a_probe_reaches_login_past_plain_before_cram_md5(tmp_path: Path) -> None:
    port = free_port()
    takes = Takes("LOGIN")
    relay = mailer(tmp_path, port, PASSWORD)
    try:
        async with picky_relay(port, takes, starttls=make_cert_pair(tmp_path / "tls")):
            await relay.probe()  # PLAIN, first over TLS, refused; LOGIN taken
            await relay.probe()
    finally:
        await relay.close()
    assert takes.sessions() == [["PLAIN", "LOGIN"], ["LOGIN"]]


async def test_a_wrong_password_costs_one_failed_login_a_held_probe_in_turn_and_backs_the_probes_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY", 0.01)
    monkeypatch.setattr("gateway.relayprobe.PROBE_EVERY_MAX", 0.08)
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY_MAX", 0.08)
    port = free_port()
    takes = Takes("LOGIN")
    cfg = login_config(tmp_path, port)
    deferred_outbox(cfg)
    store = Store.open(cfg.db_path)
    now = [0.0]
    relay = SmtpRelayMailer(cfg.mail, "gw.test", "wrong", clock=lambda: now[0])
    back = RelayBack(store, relay, lambda: None, FaultLog())
    try:
        async with picky_relay(port, takes, offers=("PLAIN", "LOGIN")):
            with capture_logs() as logs:
                for _ in range(3):
                    await back._probe()
                    now[0] = relay.logins.next_login_at()
    finally:
        await relay.close()
        store.close()
    failed = [e for e in logs if e["event"] == "outbox.relay_probe_failed"]
    assert [e["relay_fault"] for e in failed] == ["login refused"] * 3
    assert [e["next_probe_in"] for e in failed] == [0.02, 0.04, 0.08]
    # The first probe as a first send, both mechanisms; then one a probe, in turn.
    assert takes.sessions() == [["PLAIN", "LOGIN"], ["PLAIN"], ["LOGIN"]]


async def test_a_first_probe_over_tls_against_every_mechanism_refused_tries_each_plain_first(
    tmp_path: Path,
) -> None:
    port = free_port()
    logins = Logins(accept=False)
    relay = mailer(tmp_path, port, "wrong")
    try:
        async with cram_relay(port, logins, tls=make_cert_pair(tmp_path / "tls")):
            with pytest.raises(Exception) as refused:
                await relay.probe()
    finally:
        await relay.close()
    assert relay_fault(refused.value) == "login refused"
    assert logins.sessions() == [["PLAIN", "LOGIN", "CRAM-MD5"]]


async def test_a_relay_taking_cram_md5_alone_costs_a_probe_in_clear_no_failed_login(tmp_path: Path) -> None:
    port = free_port()
    takes = Takes("CRAM-MD5")
    relay = mailer(tmp_path, port, PASSWORD)
    try:
        async with picky_relay(port, takes):
            await relay.probe()  # in clear, CRAM-MD5 goes first: it keeps the password off the wire
    finally:
        await relay.close()
    assert takes.sessions() == [["CRAM-MD5"]]


async def test_a_relay_offering_cram_md5_alone_over_starttls_is_logged_in(tmp_path: Path) -> None:
    port = free_port()
    takes = Takes("CRAM-MD5")
    relay = mailer(tmp_path, port, PASSWORD)
    try:
        async with picky_relay(port, takes, starttls=make_cert_pair(tmp_path / "tls"), offers=("CRAM-MD5",)):
            await relay.probe()
    finally:
        await relay.close()
    assert takes.sessions() == [["CRAM-MD5"]]


async def test_a_first_probe_over_implicit_tls_tries_plain_before_refused_cram_md5(tmp_path: Path) -> None:
    pair = make_cert_pair(tmp_path / "tls")
    shutil.copy(pair[0], tmp_path / "company-ca.pem")
    port = free_port()
    cfg = mail_config(
        tmp_path,
        port,
        'relay_implicit_tls = true\nrelay_tls_ca_file = "company-ca.pem"\n'
        f'relay_username = "gw"\nrelay_password = "{PASSWORD}"\n',
        "localhost",
    )
    takes = Takes("PLAIN")
    relay = SmtpRelayMailer(cfg.mail, "gw.test", PASSWORD, relay_ca_file(cfg))
    try:
        async with picky_relay(port, takes, implicit=pair):
            await relay.probe()  # a daemon just started: nothing taken yet to go first
    finally:
        await relay.close()
    assert takes.sessions() == [["PLAIN"]]


async def test_mail_deferred_goes_once_probed_at_a_relay_answering_535_to_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY", 0.01)  # the probe after the refused one
    port = free_port()
    takes = Takes("LOGIN")
    async with HappySMSC() as smsc, picky_relay(port, takes, offers=("PLAIN", "LOGIN")) as sink:
        cfg = login_config(tmp_path, port, smsc.port)
        down, _grey = deferred_outbox(cfg)  # each deferred for the relay down, most of an hour to wait
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: len(sink.messages) >= len(down))
    assert sorted(rcpt for _, (rcpt,), _ in sink.messages) == [f"u{n}@acme.example" for n in range(3)]
    assert takes.sessions()[0] == ["PLAIN", "LOGIN"]
