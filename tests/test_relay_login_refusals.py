"""The relay login's refusals as the relay's fail2ban and lockouts see them (`gateway.mailauth`):
a relay that hangs up after a 535 (Exchange does, after a failed AUTH), one that answers a wrong
password at every mechanism, one whose authentication fails for now (454), and one closing (421
to AUTH: an outage, not a refused login). Real relays
(aiosmtpd with AUTH), a real database file; the probes' pace read from `RelayBack` itself, an hour
of it simulated by adding up the waits it chooses.

The next mechanism tried on the closed connection made the 535 a "connection lost", which the
probes do not back off for: some 120 failed logins an hour. Two mechanisms a probe were eight
failed logins in the first ten minutes of probing, where fail2ban's Postfix SASL jail bans at five.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from gateway.bitelog import FaultLog
from gateway.mailer import SmtpRelayMailer
from gateway.relayfaults import relay_fault
from gateway.relayprobe import RelayBack
from gateway.relayprobepace import PROBE_EVERY, PROBE_EVERY_MAX
from gateway.store.db import Store
from tests.conftest import Sink, free_port
from tests.relay_server import relay_server
from tests.test_relay_fixed_restart import deferred_outbox
from tests.test_relay_probe_mechanism import login_config, mailer

PASSWORD = "right"
MAIL = b"Subject: x\r\n\r\nx\r\n"
FINDTIME = 600.0  # fail2ban's postfix-sasl jail: maxretry 5 in findtime 10 min
MAXRETRY = 5


class Relay:
    """The relay's authenticator: each AUTH's mechanism by session. `takes` with the right
    password is taken; every other refused with `refusal`; `hang_up` closes the connection
    right after a refusal, with no 421."""

    def __init__(self, takes: str | None, *, refusal: str | None = None, hang_up: bool = False) -> None:
        self.takes = takes
        self.refusal = refusal
        self.hang_up = hang_up
        self.by_session: dict[tuple[str, int], list[str]] = {}

    def __call__(self, _server: Any, session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.by_session.setdefault(session.peer, []).append(mechanism)
        right = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
        if right and mechanism == self.takes:
            return AuthResult(success=True, handled=False)
        return AuthResult(success=False, handled=False, message=self.refusal)

    def sessions(self) -> list[list[str]]:
        return list(self.by_session.values())

    def attempts(self) -> int:
        return sum(len(tried) for tried in self.by_session.values())


def relay_class(relay: Relay) -> type[SMTP]:
    class Refusing(SMTP):
        async def smtp_AUTH(self, arg: str) -> None:
            await super().smtp_AUTH(arg)
            if relay.hang_up and not self.session.authenticated and self.transport is not None:
                self.transport.close()  # the 535 written first, then the hang-up

    return Refusing


@asynccontextmanager
async def auth_relay(
    port: int, relay: Any, cls: type[SMTP] | None = None, excluded: Sequence[str] = ("CRAM-MD5",)
) -> AsyncIterator[Sink]:
    """A relay taking AUTH in clear on 127.0.0.1:`port`, `relay` its authenticator; `cls` the
    protocol (default: `relay_class`, hanging up after a 535 when `relay.hang_up`)."""
    protocol = cls if cls is not None else relay_class(relay)
    async with relay_server(port, protocol, relay, excluded=excluded) as sink:
        yield sink


@pytest.fixture
def probing(tmp_path: Path) -> Iterator[tuple[Path, int, Store]]:
    port = free_port()
    cfg = login_config(tmp_path, port)
    deferred_outbox(cfg)  # mail deferred for the relay down: the probes' reason to go
    store = Store.open(cfg.db_path)
    try:
        yield tmp_path, port, store
    finally:
        store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def clocked(tmp_path: Path, port: int, password: str, clock: Clock) -> SmtpRelayMailer:
    return SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", password, clock=clock)


async def probe_an_hour(back: RelayBack, relay: Relay, clock: Clock) -> list[float]:
    """The times, in simulated seconds, of each failed login the probes cost the relay in an hour,
    each probe going after the wait `RelayBack` chose after the one before."""
    failed: list[float] = []
    while clock.now < 3600.0:
        before = relay.attempts()
        await back._probe()
        failed += [clock.now] * (relay.attempts() - before)
        clock.now += back.interval()
    return failed


def most_in_findtime(failed: list[float]) -> int:
    return max((sum(1 for t in failed if start <= t < start + FINDTIME) for start in failed), default=0)


async def test_a_send_to_a_relay_hanging_up_after_a_535_is_refused_its_login_not_connection_lost(
    tmp_path: Path,
) -> None:
    port = free_port()
    relay = Relay(takes=None, hang_up=True)
    sending = mailer(tmp_path, port, "wrong")
    try:
        async with auth_relay(port, relay):
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await sending.send("gw@gw.test", "u@acme.example", MAIL)
    finally:
        await sending.close()
    assert refused.value.code == 535
    assert relay_fault(refused.value) == "login refused"
    assert relay.sessions() == [["PLAIN"]]


async def test_probes_of_a_relay_hanging_up_after_a_535_back_off(probing: tuple[Path, int, Store]) -> None:
    tmp_path, port, store = probing
    relay, clock = Relay(takes=None, hang_up=True), Clock()
    probe = clocked(tmp_path, port, "wrong", clock)
    back = RelayBack(store, probe, lambda: None, FaultLog())
    try:
        async with auth_relay(port, relay):
            failed = await probe_an_hour(back, relay, clock)
    finally:
        await probe.close()
    # At 0, 60, 180, 420, 900 and 1860 s, the next 32 minutes on: not every 30 s, some 120 an hour.
    assert failed == [0.0, 60.0, 180.0, 420.0, 900.0, 1860.0]
    assert back.interval() == 64 * PROBE_EVERY <= PROBE_EVERY_MAX
    assert most_in_findtime(failed) < MAXRETRY


async def test_a_wrong_password_costs_fewer_failed_logins_than_fail2ban_bans_for(
    probing: tuple[Path, int, Store],
) -> None:
    tmp_path, port, store = probing
    relay, clock = Relay(takes="LOGIN"), Clock()
    probe = clocked(tmp_path, port, "wrong", clock)
    back = RelayBack(store, probe, lambda: None, FaultLog())
    try:
        async with auth_relay(port, relay):
            failed = await probe_an_hour(back, relay, clock)
    finally:
        await probe.close()
    first_ten_minutes = [t for t in failed if t < FINDTIME]
    assert len(first_ten_minutes) <= 4 and most_in_findtime(failed) <= 4
    # The first probe as a first send, every mechanism; then one a probe, in turn, the probes'
    # back-off after as many failed logins: each is tried again within the hour.
    assert failed[:5] == [0.0, 0.0, 120.0, 360.0, 840.0]
    assert relay.sessions()[:4] == [["PLAIN", "LOGIN"], ["PLAIN"], ["LOGIN"], ["PLAIN"]]


async def test_a_relay_refusing_plain_and_taking_login_is_found_by_the_first_probe(
    probing: tuple[Path, int, Store],
) -> None:
    tmp_path, port, store = probing
    relay = Relay(takes="LOGIN")
    probe = mailer(tmp_path, port, PASSWORD)
    woken: list[bool] = []
    back = RelayBack(store, probe, lambda: woken.append(True), FaultLog())
    try:
        async with auth_relay(port, relay):
            await back._probe()  # PLAIN answered 535, then LOGIN taken: the mail deferred first goes
            assert woken == [True]
            await probe.probe()  # the mechanism taken goes first: no failed login
    finally:
        await probe.close()
    assert relay.sessions() == [["PLAIN", "LOGIN"], ["LOGIN"]]


async def test_a_454_ends_a_sends_login_and_backs_the_probes_off(probing: tuple[Path, int, Store]) -> None:
    tmp_path, port, store = probing
    relay = Relay(takes="LOGIN", refusal="454 4.7.0 Temporary authentication failure")
    relay_mailer, probe_mailer = mailer(tmp_path, port, PASSWORD), mailer(tmp_path, port, PASSWORD)
    back = RelayBack(store, relay_mailer, lambda: None, FaultLog())
    probe_back = RelayBack(store, probe_mailer, lambda: None, FaultLog())
    try:
        async with auth_relay(port, relay):
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await relay_mailer.send("gw@gw.test", "u@acme.example", MAIL)
            await back._probe()
            await probe_back._probe()
    finally:
        await relay_mailer.close()
        await probe_mailer.close()
    # Failing for now at every mechanism: LOGIN after PLAIN's 454 would be one more failed login.
    assert refused.value.code == 454
    # The probe right after the send's refused login is stopped without connecting: no failed login,
    # so no refused probe; the next logs in 60 s after the send's, the probes' back-off after one.
    logins = relay_mailer.logins
    # The next goes then, not on the probes' own pace (no probe was refused).
    assert 0 < back.interval() <= 2 * PROBE_EVERY == logins.next_login_at() - logins.failed_at
    # Postfix logs a 454 as the failed SASL login fail2ban counts: a probe's backs the probes off.
    assert relay.sessions() == [["PLAIN"], ["PLAIN"]]
    assert probe_back.interval() == 2 * PROBE_EVERY


class Closing(SMTP):
    """Answers AUTH 421 and hangs up (shutting down, too busy), after `refusals` 535s a session."""

    refusals = 0
    answered = 0  # AUTH commands of this session (one protocol object a connection)

    async def smtp_AUTH(self, arg: str) -> None:
        self.answered += 1
        if self.answered <= self.refusals:
            await self.push("535 5.7.8 Authentication credentials invalid")
            return
        await self.push("421 4.3.2 Service shutting down, closing channel")
        assert self.transport is not None
        self.transport.close()


@asynccontextmanager
async def closing_relay(port: int, refusals: int = 0) -> AsyncIterator[None]:
    cls = type("ClosingRelay", (Closing,), {"refusals": refusals})
    server = await asyncio.get_running_loop().create_server(
        lambda: cls(Sink(), hostname="relay.test", authenticator=lambda *_a: None, auth_require_tls=False),
        "127.0.0.1",
        port,
    )
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_a_421_to_auth_is_the_relay_closing_not_a_refused_login(
    probing: tuple[Path, int, Store],
) -> None:
    tmp_path, port, store = probing
    relay_mailer = mailer(tmp_path, port, PASSWORD)
    back = RelayBack(store, relay_mailer, lambda: None, FaultLog())
    try:
        async with closing_relay(port):
            for _ in range(3):
                await back._probe()
            assert back.interval() == PROBE_EVERY  # an outage: probed every 30 s, not backed off
            with pytest.raises(aiosmtplib.SMTPResponseException) as closing:
                await relay_mailer.send("gw@gw.test", "u@acme.example", MAIL)
            assert relay_fault(closing.value) == "closing"
            with pytest.raises(aiosmtplib.SMTPResponseException) as again:  # no refusal held: it tries
                await relay_mailer.send("gw@gw.test", "u@acme.example", MAIL)
            assert relay_fault(again.value) == "closing"
    finally:
        await relay_mailer.close()
    # No mechanism was refused: the probes' turn stays at the first, and nothing is held.
    assert relay_mailer.logins.turn is None and relay_mailer.logins.held is None


async def test_a_421_after_a_refusal_ends_the_send_with_that_refusal(tmp_path: Path) -> None:
    port = free_port()
    relay_mailer = mailer(tmp_path, port, PASSWORD)
    try:
        async with closing_relay(port, refusals=1):
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await relay_mailer.send("gw@gw.test", "u@acme.example", MAIL)
    finally:
        await relay_mailer.close()
    assert refused.value.code == 535 and relay_fault(refused.value) == "login refused"
