"""A wrong relay password with mail queued: the sends, not the probes, made the failed logins. Each
mail on its own outbox slot and its own back-off (30, 60, 120 s...) tried every mechanism offered:
29 failed logins in 100 s with three mails queued, where fail2ban's Postfix SASL jail bans the
gateway's address at five in ten minutes and Exchange locks the account. Once the relay refused a
login, sends fail at once with that refusal without connecting, and the probes alone log in, paced
from the last failed login (`gateway.mailauth.RelayLogins`).

A real relay (aiosmtpd offering CRAM-MD5, which it refuses as Dovecot keeping hashed passwords does,
PLAIN and LOGIN), a real database file, the real outbox worker and its `RelayBack`; three hours on
the injected clock, the worker's claims and the probes each at the time it would choose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.relayfaults import relay_fault, waits_for_relay
from gateway.store.db import Store
from tests.conftest import Sink, free_port
from tests.relay_server import relay_server
from tests.test_relay_probe_mechanism import login_config

MAIL = b"Subject: x\r\n\r\nx\r\n"
FINDTIME = 600.0  # fail2ban's postfix-sasl jail: maxretry 5 in findtime 10 min
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Relay:
    """The relay's account: its password (changed by its admin in a test), each connection and each
    failed login at the injected clock's time."""

    def __init__(self, clock: Clock, password: str) -> None:
        self.clock = clock
        self.password = password
        self.connections: list[float] = []
        self.failed: list[tuple[float, str]] = []
        self.taken: list[tuple[float, str]] = []

    def __call__(self, _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        right = isinstance(data, LoginPassword) and data.password == self.password.encode()
        (self.taken if right else self.failed).append((self.clock(), mechanism))
        return AuthResult(success=right, handled=False)

    def failed_at(self) -> list[float]:
        return [t for t, _mechanism in self.failed]


@asynccontextmanager
async def relay_at(port: int, relay: Relay, excluded: Sequence[str] = ()) -> AsyncIterator[Sink]:
    """Offers CRAM-MD5 (refused), PLAIN and LOGIN, but those in `excluded` as a connection begins."""

    class Dovecot(SMTP):
        def connection_made(self, transport: Any) -> None:
            relay.connections.append(relay.clock())
            super().connection_made(transport)

        async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
            await self.challenge_auth("<1.2@relay.test>")
            relay.failed.append((relay.clock(), "CRAM-MD5"))
            return AuthResult(success=False, handled=False)

    async with relay_server(port, Dovecot, relay, excluded=excluded) as sink:
        yield sink


async def run_until(worker: OutboxWorker, clock: Clock, end: float, next_probe: float) -> float:
    """The worker's sends and `RelayBack`'s probes as `OutboxWorker.run` and `RelayBack.run` time
    them, on the injected clock: each mail due claimed (one a slot, all at once) and sent, and a
    probe while mail waits for the relay and nothing is sent, `interval()` after the one before.
    Returns when the next probe was to go."""
    outbox, back = worker.store.outbox, worker.relay
    while clock.now < end:
        due = outbox.next_mail_due_at()
        if due is not None and due <= clock.now:
            await asyncio.gather(*await worker._claim(worker.concurrency))
            continue
        if next_probe <= clock.now:
            if waits_for_relay(outbox):
                await back._probe()
            next_probe = clock.now + back.interval()
            continue
        clock.now = min(next_probe, due if due is not None else next_probe)
    return next_probe


def most_in_findtime(failed: list[float]) -> int:
    return max((sum(1 for t in failed if start <= t < start + FINDTIME) for start in failed), default=0)


def outbox_rows(store: Store) -> list[tuple[str, int, str | None]]:
    sql = "SELECT state, attempts, last_error FROM outbox ORDER BY id"
    return [tuple(row) for row in store.db.conn.execute(sql)]


async def test_a_wrong_password_with_mail_queued_costs_four_failed_logins_in_any_ten_minutes(
    tmp_path: Path,
) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    for n in range(3):
        store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
    relay = Relay(clock, password="right")
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "wrong", clock=clock)
    worker = OutboxWorker(store, mailer, concurrency=4)
    try:
        async with relay_at(port, relay) as sink:
            next_probe = await run_until(worker, clock, HOUR, next_probe=0.0)
            # One send's login at the start (every mechanism: nothing was taken yet), then a probe's
            # four minutes on, and twice as far apart each time (the probes stopped meanwhile without
            # connecting are no refused probes: counted, the first went seven minutes on).
            assert relay.failed_at() == [0.0, 0.0, 0.0, 240.0, 720.0, 1680.0]
            assert most_in_findtime(relay.failed_at()) <= 4
            # The three sends at the start connected at once; every connection since was a probe's
            # login: the sends failed at once, without connecting.
            assert relay.connections == [0.0, 0.0, 0.0, 240.0, 720.0, 1680.0]
            rows = outbox_rows(store)
            assert {state for state, _n, _error in rows} == {"queued"}
            assert all(error and error.startswith("SMTPAuthenticationError(535,") for _s, _n, error in rows)
            # A send that failed at once still spent one attempt, on the mail's own back-off: as the
            # login it used to try did, no more (at 0, 30, 90, 210, 450, 930 and 1890 s).
            assert [n for _s, n, _e in rows] == [7, 7, 7]
            assert sink.messages == []

            relay.password = "wrong"  # the relay's admin sets the account's password to ours
            await run_until(worker, clock, 3 * HOUR, next_probe)
            sent = [state for state, _n, _e in outbox_rows(store)]
    finally:
        await mailer.close()
        store.close()
    # The probe that logged in woke a mail, its send (the mechanism taken first) woke the rest.
    assert sorted(rcpt for _f, (rcpt,), _c in sink.messages) == [f"u{n}@acme.example" for n in range(3)]
    assert sent == ["sent"] * 3
    assert most_in_findtime(relay.failed_at()) <= 4
    taken_by = {mechanism for _t, mechanism in relay.taken}
    assert taken_by == {"PLAIN"}


async def test_a_send_after_a_refused_login_fails_with_it_at_once_without_connecting(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    relay = Relay(clock, password="right")
    mailer = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", "wrong", clock=clock)
    try:
        async with relay_at(port, relay):
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as first:
                await mailer.send("gw@gw.test", "u@acme.example", MAIL)
            clock.now = 10 * HOUR  # however long after: only a probe's login taken ends it
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as again:
                await mailer.send("gw@gw.test", "u@acme.example", MAIL)
    finally:
        await mailer.close()
    assert repr(again.value) == repr(first.value)  # the mail's error, and its kind, as before
    assert relay_fault(again.value) == "login refused"
    assert relay.connections == [0.0]
    assert [mechanism for _t, mechanism in relay.failed] == ["CRAM-MD5", "PLAIN", "LOGIN"]


async def test_mails_due_at_once_cost_one_login_not_one_each(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    relay = Relay(clock, password="right")
    mailer = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", "wrong", clock=clock)
    try:
        async with relay_at(port, relay):
            sends = [mailer.send("gw@gw.test", f"u{n}@acme.example", MAIL) for n in range(4)]
            results = await asyncio.gather(*sends, return_exceptions=True)
    finally:
        await mailer.close()
    assert {relay_fault(r) for r in results if isinstance(r, Exception)} == {"login refused"}
    assert len(results) == 4 and all(isinstance(r, aiosmtplib.SMTPAuthenticationError) for r in results)
    assert [mechanism for _t, mechanism in relay.failed] == ["CRAM-MD5", "PLAIN", "LOGIN"]


async def test_a_restart_with_the_password_fixed_in_the_config_sends_at_once(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    relay = Relay(clock, password="right")
    cfg = login_config(tmp_path, port)
    before = SmtpRelayMailer(cfg.mail, "gw.test", "wrong", clock=clock)
    after = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock)  # the daemon restarted
    try:
        async with relay_at(port, relay) as sink:
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await before.send("gw@gw.test", "u@acme.example", MAIL)
            await after.send("gw@gw.test", "u@acme.example", MAIL)
    finally:
        await before.close()
        await after.close()
    assert len(sink.messages) == 1
