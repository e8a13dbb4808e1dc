"""A relay that stops taking the mechanism it last took while it still offers it, and takes another:
PLAIN answered 535, LOGIN taken (an Exchange or Sendmail setup changed, a SASL backend swapped).
Once a send's PLAIN was refused, every probe tried PLAIN alone, the mechanism last taken: refused at
each, backed off to an hour, and no mail went until a restart. A held probe now goes on past the
known mechanism's refusal to the others offered, as the ten minutes' budget of failed logins leaves
room (`gateway.relayloginbudget`), and a wrong password still costs at most four failed logins in
any ten minutes.

A real relay (aiosmtpd offering CRAM-MD5, which it refuses as Dovecot keeping hashed passwords does,
PLAIN and LOGIN), a real database file, the real outbox worker and its `RelayBack` on the injected
clock, the worker's claims and the probes each at the time it would choose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.conftest import Sink, free_port
from tests.test_relay_login_gate import (
    HOUR,
    MAIL,
    Clock,
    Relay,
    most_in_findtime,
    outbox_rows,
    relay_at,
    run_until,
)
from tests.test_relay_login_refusals import auth_relay
from tests.test_relay_probe_mechanism import login_config

SWITCH = 1000.0  # when the relay stops taking PLAIN


class SwitchingRelay(Relay):
    """Takes the right password with any mechanism but those in `refuses` (535), which it still offers."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock, password="right")
        self.refuses: set[str] = set()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if mechanism in self.refuses:
            self.failed.append((self.clock(), mechanism))
            return AuthResult(success=False, handled=False)
        return super().__call__(server, session, envelope, mechanism, data)


@asynccontextmanager
async def hanging_up_relay(port: int, relay: Relay) -> AsyncIterator[Sink]:
    """As Exchange: offers PLAIN and LOGIN, and closes the connection right after a refused AUTH."""

    class Exchange(SMTP):
        def connection_made(self, transport: Any) -> None:
            relay.connections.append(relay.clock())
            super().connection_made(transport)

        async def smtp_AUTH(self, arg: str) -> None:
            await super().smtp_AUTH(arg)
            if not self.session.authenticated and self.transport is not None:
                self.transport.close()  # the 535 written first, then the hang-up

    async with auth_relay(port, relay, Exchange) as sink:
        yield sink


async def switch_away_from_plain(
    tmp_path: Path, mails: int, *, hang_up: bool = False
) -> tuple[SwitchingRelay, SmtpRelayMailer, list[tuple[str, int, str | None]], int]:
    """A first mail logged in with PLAIN; at SWITCH the relay refuses PLAIN, and `mails` more are
    queued; two hours on the injected clock. The relay, the mailer, the outbox's rows and the mail
    the relay took."""
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    relay = SwitchingRelay(clock)
    # One mail a session: each send logs in, as after the relay's idle timeout.
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1)
    worker = OutboxWorker(store, mailer)
    serving = hanging_up_relay if hang_up else relay_at
    try:
        async with serving(port, relay) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "first@acme.example", MAIL)
            next_probe = await run_until(worker, clock, SWITCH - 10.0, next_probe=0.0)
            assert mailer.logins.known == "plain" and len(sink.messages) == 1
            clock.now, relay.refuses = SWITCH, {"PLAIN"}
            for n in range(mails):
                store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
            await run_until(worker, clock, SWITCH + 2 * HOUR, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    return relay, mailer, rows, len(sink.messages)


@pytest.mark.parametrize(("mails", "found_at"), [(1, SWITCH + 60.0), (3, SWITCH + 720.0)])
async def test_a_relay_that_stops_taking_plain_gets_the_mail_with_login(
    tmp_path: Path, mails: int, found_at: float
) -> None:
    relay, mailer, rows, taken = await switch_away_from_plain(tmp_path, mails)
    assert [state for state, _n, _error in rows] == ["sent"] * (mails + 1) and taken == mails + 1
    assert mailer.logins.known == "login" and mailer.logins.held is None
    # The sends refused PLAIN, the mechanism known, and stopped there; the first probe the budget
    # had room for went on to LOGIN after PLAIN's refusal (one send's refusal: the probe 60 s on;
    # three sends' at once: the probe 240 s on had room for PLAIN alone, the next 480 s later for
    # both). CRAM-MD5, refused in the first login that then took PLAIN, was not tried again.
    switched = [(t, mechanism) for t, mechanism in relay.taken if t >= SWITCH]
    assert switched[0] == (found_at, "LOGIN")
    assert {mechanism for _t, mechanism in switched} == {"LOGIN"}
    assert {mechanism for t, mechanism in relay.failed if t >= SWITCH} == {"PLAIN"}
    assert most_in_findtime(relay.failed_at()) <= 4


async def test_a_relay_hanging_up_after_refusing_plain_gets_the_next_probe_with_login(tmp_path: Path) -> None:
    relay, mailer, rows, taken = await switch_away_from_plain(tmp_path, 1, hang_up=True)
    assert [state for state, _n, _error in rows] == ["sent", "sent"] and taken == 2
    # The send's PLAIN refused at the switch; the probe 60 s on tried PLAIN, and the relay hung up
    # after its 535 before LOGIN could go; the next, 120 s later, began with LOGIN: taken.
    assert [t for t, _mechanism in relay.failed] == [SWITCH, SWITCH + 60.0]
    assert next((t, m) for t, m in relay.taken if t >= SWITCH) == (SWITCH + 180.0, "LOGIN")
    assert mailer.logins.known == "login"


async def test_a_wrong_password_with_the_known_mechanism_still_costs_four_failed_logins_in_ten_minutes(
    tmp_path: Path,
) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    relay = Relay(clock, password="right")
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1)
    worker = OutboxWorker(store, mailer)
    try:
        async with relay_at(port, relay) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "first@acme.example", MAIL)
            next_probe = await run_until(worker, clock, SWITCH - 10.0, next_probe=0.0)
            clock.now, relay.password = SWITCH, "changed"  # the account's password changed at the relay
            for n in range(3):
                store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
            await run_until(worker, clock, SWITCH + 3 * HOUR, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    failed = [(t, mechanism) for t, mechanism in relay.failed if t >= SWITCH]
    # Probes went on to LOGIN after PLAIN's refusal where the budget had room: never more than four
    # failed logins in any ten minutes, and the probes' back-off still reached the hour.
    assert {mechanism for _t, mechanism in failed} >= {"PLAIN", "LOGIN"}
    assert most_in_findtime(relay.failed_at()) <= 4
    assert len([t for t, _m in failed if t >= SWITCH + 2 * HOUR]) <= 3
    assert [state for state, _n, _error in rows][1:] == ["queued"] * 3 and len(sink.messages) == 1
