"""The relay logins of one mailer share what they learn (`gateway.mailauth.RelayLogins`), against a
relay that, as Dovecot keeping hashed passwords, offers CRAM-MD5 and refuses every account with it.

After an account lock of 60 s, no mail went for over seven minutes: the probes the gate stopped
without connecting counted as refused probes, so the probes' back-off grew with each, and a send's
refusal of the mechanism last taken moved the probes' turn on to CRAM-MD5, refused after the unlock.
At a start with eight mails queued each send tried CRAM-MD5 first, read before its turn: eight failed
logins at once at a healthy relay, and sends starting while one login went on from CRAM-MD5 to PLAIN
failed with its refusal. A real relay (aiosmtpd), a real database file, the real outbox worker and
its `RelayBack` on the injected clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult
from structlog.testing import capture_logs

from gateway.mailauth import LOGINS_AT_ONCE, LoginTurnTimeout
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.relayfaults import relay_fault
from gateway.store.db import Store
from tests.conftest import Sink, free_port
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

# The account locked for a minute (Exchange, after someone's failed logins), past the ten minutes of
# the first login's CRAM-MD5 refusal (`gateway.relayloginbudget`).
LOCKED = (700.0, 760.0)


class LockingRelay(Relay):
    """Takes the right password with PLAIN or LOGIN but while the account is locked."""

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if LOCKED[0] <= self.clock() < LOCKED[1]:
            self.failed.append((self.clock(), mechanism))
            return AuthResult(success=False, handled=False)
        return super().__call__(server, session, envelope, mechanism, data)


async def test_mail_goes_at_the_first_probe_after_an_account_lock_ends(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    relay = LockingRelay(clock, password="right")
    # One mail a session: each send logs in, as after the relay's idle timeout.
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1)
    worker = OutboxWorker(store, mailer)
    try:
        async with relay_at(port, relay) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "first@acme.example", MAIL)
            next_probe = await run_until(worker, clock, LOCKED[0] - 10.0, next_probe=0.0)
            clock.now = LOCKED[0]
            assert relay.failed == [(0.0, "CRAM-MD5")] and len(sink.messages) == 1  # PLAIN found
            for n in range(3):
                store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
            await run_until(worker, clock, LOCKED[0] + 240.0 + 1.0, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    # The sends at the lock tried PLAIN, the mechanism last taken, and stopped at its refusal: one
    # failed login a send, at most three at once. Every login after it was a probe's, PLAIN again (a
    # lock says nothing of the mechanism): no CRAM-MD5 nor LOGIN refused after the unlock.
    locked = relay.failed[1:]
    assert 1 <= len(locked) <= LOGINS_AT_ONCE
    assert set(locked) == {(LOCKED[0], "PLAIN")}
    # The first probe to log in went the probes' back-off after the last failed login (60, 120 or
    # 240 s after one, two or three), after the unlock, and no sooner than the ten minutes' budget had
    # room (CRAM-MD5's refusal at 0 and three at the lock are four): its login taken, all the mail
    # went with it.
    first_taken = min(t for t, _mechanism in relay.taken if t >= LOCKED[0])
    failed = relay.failed_at()
    budget = failed[-4] + FINDTIME if len(failed) >= 4 else 0.0
    assert first_taken == max(LOCKED[0] + 30.0 * 2 ** len(locked), budget)
    assert most_in_findtime(failed) <= 4
    assert [state for state, _n, _error in rows] == ["sent"] * 4


async def test_mails_queued_at_a_start_cost_a_relay_refusing_cram_md5_one_failed_login(
    tmp_path: Path,
) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    for n in range(8):
        store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
    relay = Relay(clock, password="right")
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock)
    worker = OutboxWorker(store, mailer, concurrency=8)
    try:
        async with relay_at(port, relay) as sink:
            with capture_logs() as logs:
                await run_until(worker, clock, 1.0, next_probe=0.0)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    # The first login alone: CRAM-MD5 refused, PLAIN taken; the seven waiting for it went with PLAIN.
    assert relay.failed == [(0.0, "CRAM-MD5")]
    assert [mechanism for _t, mechanism in relay.taken] == ["PLAIN"] * 8
    assert rows == [("sent", 1, None)] * 8 and len(sink.messages) == 8
    # The CRAM-MD5 refused within a login then taken held nothing: no send failed, nothing said.
    events = {e["event"] for e in logs}
    assert "mail.deferred" not in events and "mail.relay_login_refused" not in events


async def test_a_send_waiting_too_long_for_the_first_login_says_so_and_goes_with_the_mail_taken(
    tmp_path: Path,
) -> None:
    class SlowAuth(SMTP):
        async def smtp_AUTH(self, arg: str) -> None:
            await asyncio.sleep(0.5)  # a slow password backend (LDAP) at the relay
            await super().smtp_AUTH(arg)

    port = free_port()
    relay = Relay(Clock(), password="right")
    server = await asyncio.get_running_loop().create_server(
        lambda: SlowAuth(Sink(), hostname="relay.test", authenticator=relay, auth_require_tls=False),
        "127.0.0.1",
        port,
    )
    clock = Clock()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock)
    mailer.logins.command_timeout = 0.02  # the wait for one login: 0.02 s an AUTH mechanism and one more
    sends: list[Any] = []
    real_send = mailer.send

    async def send(mail_from: str, rcpt: str, content: bytes) -> None:
        try:
            await real_send(mail_from, rcpt, content)
        except Exception as exc:
            sends.append(exc)
            raise

    mailer.send = send  # type: ignore[method-assign]
    worker = OutboxWorker(store, mailer, concurrency=2)
    try:
        for n in range(2):
            store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
        await asyncio.gather(*await worker._claim(2))
        rows = store.db.conn.execute("SELECT state, next_attempt_at, last_error FROM outbox ORDER BY id")
        rows = [tuple(row) for row in rows]
    finally:
        await mailer.close()
        store.close()
        server.close()
        await server.wait_closed()
    [second] = sends
    assert isinstance(second, LoginTurnTimeout)
    assert "the gateway's own first login" in str(second)
    # The login before it kept it waiting on the relay's answers: the relay's timeout, so the mail
    # went again as soon as the relay took the first (not after its own back-off).
    assert relay_fault(second) == "timeout"
    assert sorted(state for state, _at, _error in rows) == ["queued", "sent"]
    assert [(at, error) for state, at, error in rows if state == "queued"] == [
        (clock.now, f"SMTPTimeoutError({str(second)!r})")
    ]
    assert [mechanism for _t, mechanism in relay.taken] == ["PLAIN"]
