"""A 454 to AUTH (RFC 4954: "temporary authentication failure", the relay's authentication backend
down or overloaded) is the relay's trouble, not a refusal of our password. It was held as one: said
as `mail.relay_login_refused` ("a password fixed in the config goes after a restart"), the mail's
error a refused login, and no send logged in until a probe's login was taken. Now no refusal is
held: no login goes before the probes' back-off after the 454 (Postfix logs it as the failed SASL
login fail2ban counts), then the next login goes, a send's too; the mail stays queued, its error
named `LoginFailingForNow`.

Real relays (aiosmtpd with AUTH, answering 454 while its backend is down), a real database file,
the real outbox worker and its `RelayBack` on the injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from structlog.testing import capture_logs

from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.relayfaultkinds import fault_kind
from gateway.relayfaults import relay_fault
from gateway.store.db import Store
from tests.conftest import Sink, free_port
from tests.test_relay_login_gate import HOUR, MAIL, Clock, most_in_findtime, outbox_rows, run_until
from tests.test_relay_login_refusals import auth_relay
from tests.test_relay_probe_mechanism import login_config

FAILING = "454 4.7.0 Temporary authentication failure"
DOWN_AT = 1000.0  # the relay's authentication backend goes down


class Backend:
    """The relay's authenticator: PLAIN and LOGIN with the right password taken, 454 while `down`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.down = False
        self.connections: list[float] = []
        self.answers: list[tuple[float, str, str]] = []  # (time, mechanism, "taken" or the reply)

    def __call__(self, _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if self.down:
            self.answers.append((self.clock(), mechanism, FAILING))
            return AuthResult(success=False, handled=False, message=FAILING)
        right = isinstance(data, LoginPassword) and data.password == b"right"
        self.answers.append((self.clock(), mechanism, "taken" if right else "535"))
        return AuthResult(success=right, handled=False)

    def failed_at(self) -> list[float]:
        return [t for t, _mechanism, said in self.answers if said != "taken"]


@asynccontextmanager
async def backend_relay(port: int, backend: Backend) -> AsyncIterator[Sink]:
    class Relay(SMTP):
        def connection_made(self, transport: Any) -> None:
            backend.connections.append(backend.clock())
            super().connection_made(transport)

    async with auth_relay(port, backend, Relay) as sink:
        yield sink


async def test_a_454_holds_no_refusal_and_the_send_after_the_back_off_logs_in(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    backend = Backend(clock)
    mailer = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", "right", clock=clock)
    try:
        with capture_logs() as logs:
            async with backend_relay(port, backend) as sink:
                backend.down = True
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as failing:
                    await mailer.send("gw@gw.test", "u@acme.example", MAIL)
                clock.now = 30.0  # before the probes' back-off after one failed login: no login
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as again:
                    await mailer.send("gw@gw.test", "u@acme.example", MAIL)
                assert backend.connections == [0.0]
                status = mailer.logins.report()
                backend.down = False
                clock.now = 60.0  # its back-off over: a send logs in, no probe needed
                await mailer.send("gw@gw.test", "u@acme.example", MAIL)
    finally:
        await mailer.close()
    # Named apart from a refused login (`gateway.mailauth.LoginFailingForNow`), as the mail's error.
    assert failing.value.code == 454 and relay_fault(failing.value) == "login failing for now"
    assert repr(again.value) == repr(failing.value)  # the mail's kept error: no refused login
    assert len(sink.messages) == 1 and backend.connections == [0.0, 60.0]
    assert mailer.logins.held is None and mailer.logins.report() is None
    assert status is not None and status["state"] == "failing for now" and status["reply"] == FAILING
    events = [e["event"] for e in logs]
    assert "mail.relay_login_failing" in events and "mail.relay_login_refused" not in events
    assert events.count("mail.relay_login_taken") == 1


async def test_mail_waits_out_a_454_queued_and_goes_once_the_backend_is_back(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    backend = Backend(clock)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1)
    worker = OutboxWorker(store, mailer)
    try:
        async with backend_relay(port, backend) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "first@acme.example", MAIL)
            next_probe = await run_until(worker, clock, DOWN_AT - 10.0, next_probe=0.0)
            clock.now, backend.down = DOWN_AT, True
            for n in range(3):
                store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
            next_probe = await run_until(worker, clock, DOWN_AT + HOUR, next_probe)
            waiting = outbox_rows(store)
            backend.down = False
            await run_until(worker, clock, DOWN_AT + 3 * HOUR, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    # An hour of 454s: the mail stays queued, said as the relay's authentication failing for now.
    assert [state for state, _n, _error in waiting][1:] == ["queued"] * 3
    assert {fault_kind(error) for _s, _n, error in waiting[1:]} == {"login failing for now"}
    # Each login the relay answered 454 is a failed login at its fail2ban: four in ten minutes at most.
    assert most_in_findtime(backend.failed_at()) <= 4
    # The backend back: the next login, on the probes' back-off, was taken and every mail went.
    assert [state for state, _n, _error in rows] == ["sent"] * 4 and len(sink.messages) == 4
    assert mailer.logins.known == "plain" and mailer.logins.failing is None


async def test_mail_going_on_a_kept_session_opens_no_login_before_a_454s_back_off(tmp_path: Path) -> None:
    # A mail taken on a session logged in before cleared the 454's gate: each such mail let one more
    # login through at once, past the probes' back-off and the ten minutes' budget (eight in 8 s).
    clock, port = Clock(), free_port()
    backend = Backend(clock)
    cfg = login_config(tmp_path, port)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1000)
    outcomes: list[str] = []
    try:
        async with backend_relay(port, backend) as sink:
            await mailer.send("gw@gw.test", "u@acme.example", MAIL)  # logged in; its session kept
            backend.down = True  # the relay's authentication backend down: 454 to every AUTH
            for step in range(60):
                clock.now = 10.0 + 10 * step  # to 600 s: two sends at once, one on the session kept
                sends = (mailer.send("gw@gw.test", "u@acme.example", MAIL) for _ in range(2))
                done = await asyncio.gather(*sends, return_exceptions=True)
                outcomes += [type(outcome).__name__ for outcome in done]
    finally:
        await mailer.close()
    # Logins only at the probes' back-off after each 454 (60, 120, 240 s): four in the ten minutes.
    assert backend.failed_at() == [10.0, 70.0, 190.0, 430.0]
    assert most_in_findtime(backend.failed_at()) <= 4
    assert outcomes.count("NoneType") == 60 and len(sink.messages) == 61  # the kept session's mail
    assert set(outcomes) == {"NoneType", "LoginFailingForNow"}
    assert mailer.logins.report() is None  # status: mail goes, the 454 said no more
