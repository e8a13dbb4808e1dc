"""The probes' mechanism once one is known, and the first login after a start being a probe's
(`gateway.mailauth.RelayLogins`), against relays offering mechanisms they refuse: one as Dovecot
keeping hashed passwords (CRAM-MD5 refused for every account), one as some Exchange setups (PLAIN
refused too, LOGIN taken).

After an account locked for 15 minutes each refused probe moved the probes' turn on, to mechanisms
the relay had refused in the very first login: mail went 15 to 45 minutes after the unlock. A relay
down at a start and back refusing CRAM-MD5 was probed with CRAM-MD5 alone: refused, every send held
with a warning and mail deferred "login refused" with the right password. A real relay (aiosmtpd),
a real database file, the real outbox worker and its `RelayBack` on the injected clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from structlog.testing import capture_logs

from gateway.mailauth import RelayLogins
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.relayprobepace import PROBE_EVERY_MAX
from gateway.store.db import Store
from tests.conftest import free_port
from tests.test_relay_login_gate import (
    FINDTIME,
    MAIL,
    Clock,
    Relay,
    most_in_findtime,
    outbox_rows,
    relay_at,
    run_until,
)
from tests.test_relay_probe_mechanism import login_config

LOCKED = (100.0, 1000.0)  # an account lockout of 15 minutes (Active Directory's default)
# CRAM-MD5 is refused by `relay_at` itself (Dovecot keeping hashed passwords); Exchange refuses PLAIN too.
KINDS = {"dovecot": frozenset(), "exchange": frozenset({"PLAIN"})}
TAKES = {"dovecot": "PLAIN", "exchange": "LOGIN"}


class PickyRelay(Relay):
    """Takes the right password but with a mechanism in `refuses`, or while the account is locked."""

    def __init__(
        self, clock: Clock, refuses: frozenset[str], locked: tuple[float, float] = (0.0, 0.0)
    ) -> None:
        super().__init__(clock, password="right")
        self.refuses = refuses
        self.locked = locked

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if mechanism in self.refuses or self.locked[0] <= self.clock() < self.locked[1]:
            self.failed.append((self.clock(), mechanism))
            return AuthResult(success=False, handled=False)
        return super().__call__(server, session, envelope, mechanism, data)


@pytest.mark.parametrize("kind", KINDS)
async def test_after_a_15_minute_lock_mail_goes_at_the_first_probe_after_the_unlock(
    tmp_path: Path, kind: str
) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    relay = PickyRelay(clock, KINDS[kind], LOCKED)
    # One mail a session: each send logs in, as after the relay's idle timeout.
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1)
    worker = OutboxWorker(store, mailer)
    try:
        async with relay_at(port, relay) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "first@acme.example", MAIL)
            next_probe = await run_until(worker, clock, LOCKED[0] - 10.0, next_probe=0.0)
            clock.now = LOCKED[0]
            found = [mechanism for t, mechanism in relay.failed if t < LOCKED[0]]
            for n in range(3):
                store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
            await run_until(worker, clock, LOCKED[1] + PROBE_EVERY_MAX, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    assert mailer.logins.known == TAKES[kind].lower() and len(sink.messages) == 4
    # The first login found the mechanism the relay takes past those it refuses; every failed login
    # since was that mechanism's, refused for the lock: none of a mechanism the relay refused before.
    assert found == ["CRAM-MD5", *sorted(KINDS[kind])]
    assert {mechanism for t, mechanism in relay.failed if t >= LOCKED[0]} == {TAKES[kind]}
    # The first login after the unlock was taken, at the first probe after it: all the mail went with
    # it. The sends at the lock, as many at once as the ten minutes' budget left room for after the
    # first login's refusals at 0 (three after Dovecot's one, two after Exchange's two), then probes
    # on the probes' back-off, none before the budget had room: 600 s after the first refusal, then
    # 480 s on (Dovecot), or 240 and 480 s on (Exchange). Each tried the mechanism known alone: the
    # budget left no room for another (Dovecot's LOGIN), Exchange's others were refused before.
    after = [t for t in relay.connections if t >= LOCKED[1]]
    assert after[0] == {"dovecot": 1080.0, "exchange": 1320.0}[kind]
    assert most_in_findtime([t for t, _mechanism in relay.failed]) <= 4
    assert min(t for t, _mechanism in relay.taken if t >= LOCKED[0]) == after[0]
    assert [state for state, _n, _error in rows] == ["sent"] * 4


@pytest.mark.parametrize("kind", KINDS)
async def test_a_relay_down_at_a_start_and_back_refusing_cram_md5_costs_no_refusal(
    tmp_path: Path, kind: str
) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    for n in range(3):
        store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
    relay = PickyRelay(clock, KINDS[kind])
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock)
    worker = OutboxWorker(store, mailer, concurrency=4)
    try:
        with capture_logs() as logs:
            next_probe = await run_until(worker, clock, 45.0, next_probe=0.0)  # nothing listens
            async with relay_at(port, relay) as sink:
                await run_until(worker, clock, 600.0, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    # The first login was the probe's at 60 s, the first after the relay came back: it went on past
    # the mechanisms refused as a send's does, and its mail, then the rest, went at once.
    assert relay.connections[0] == 60.0
    assert [mechanism for _t, mechanism in relay.failed] == ["CRAM-MD5", *sorted(KINDS[kind])]
    assert min(t for t, _mechanism in relay.taken) == 60.0
    assert max(t for t, _mechanism in relay.taken) == 60.0 and len(sink.messages) == 3
    assert [state for state, _n, _error in rows] == ["sent"] * 3
    # No refusal held, said, nor any mail deferred for one: only for the outage.
    events = [e for e in logs if e["event"] in ("mail.relay_login_refused", "mail.deferred")]
    assert "mail.relay_login_refused" not in {e["event"] for e in events}
    assert {e["relay_fault"] for e in events} == {"unreachable"}


async def test_a_wrong_password_at_a_first_probe_costs_four_failed_logins_in_any_ten_minutes(
    tmp_path: Path,
) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    for n in range(3):  # deferred for the relay down before this start, an hour still to wait each
        mail = store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
        store.db.conn.execute(
            "UPDATE outbox SET attempts = 9, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (4 * PROBE_EVERY_MAX, "SMTPConnectError('Error connecting to 127.0.0.1')", mail),
        )
    relay = Relay(clock, password="right")
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "wrong", clock=clock)
    worker = OutboxWorker(store, mailer)
    try:
        async with relay_at(port, relay) as sink:
            await run_until(worker, clock, 2 * PROBE_EVERY_MAX + 1.0, next_probe=0.0)
    finally:
        await mailer.close()
        store.close()
    # The first probe logs in as a first send would, every mechanism; then one a probe, the probes'
    # back-off after as many failed logins: 240 s after three, 480 s after four, twice as far each
    # time, an hour at most.
    failed = relay.failed_at()
    assert failed == [0.0, 0.0, 0.0, 240.0, 720.0, 1680.0, 3600.0, 7200.0]
    assert relay.connections == [0.0, 240.0, 720.0, 1680.0, 3600.0, 7200.0]
    assert most_in_findtime(failed) == 4 and len([t for t in failed if t < FINDTIME]) == 4
    assert sink.messages == []


async def test_the_probes_back_off_reads_any_count_of_failed_logins() -> None:
    logins = RelayLogins(Clock(), 30.0)
    logins.failed_at, logins.failed = 5.0, 1100  # some 43 days of hourly probes refused
    assert logins.next_login_at() == 5.0 + PROBE_EVERY_MAX
