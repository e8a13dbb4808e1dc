"""Sends logging in at once, each going on to a further mechanism: the ten minutes' budget of four
failed logins (`gateway.relayloginbudget`) was asked by each alone, as if no other login were on
its way. Three sends whose first mechanism was refused each saw room left (three, two, one) and
each went on: six failed logins at once. A relay that stopped offering the mechanism last taken
while our password no longer holds (an account's password changed with the relay's setup) had
every send begin with another mechanism, and fail2ban's five in ten minutes banned the gateway.

A real relay (aiosmtpd refusing every account with CRAM-MD5, as Dovecot keeping hashed passwords
does, its mechanisms offered read at each connection), a real database file, the real outbox
worker and its `RelayBack` on the injected clock.
"""

from __future__ import annotations

from pathlib import Path

from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.conftest import free_port
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
from tests.test_relay_probe_mechanism import login_config

CHANGED = 1000.0  # the relay's setup and the account's password change


async def test_sends_going_on_at_once_share_the_budget_of_four_failed_logins(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    relay, excluded = Relay(clock, password="right"), []
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1)
    worker = OutboxWorker(store, mailer)
    try:
        async with relay_at(port, relay, excluded) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "first@acme.example", MAIL)
            next_probe = await run_until(worker, clock, CHANGED - 10.0, next_probe=0.0)
            assert mailer.logins.known == "plain" and len(sink.messages) == 1
            # PLAIN no longer offered, and the account's password changed: every mechanism refused.
            clock.now, relay.password = CHANGED, "changed"
            excluded.append("PLAIN")
            for n in range(3):
                store.outbox.enqueue_mail("reply", "gw@gw.test", f"u{n}@acme.example", MAIL)
            await run_until(worker, clock, CHANGED + 2 * HOUR, next_probe)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    at_change = [mechanism for t, mechanism in relay.failed if t == CHANGED]
    assert len(at_change) <= 4 and "LOGIN" in at_change  # one of them went on, as far as the budget let it
    assert most_in_findtime(relay.failed_at()) <= 4
    assert [state for state, _attempts, _error in rows][1:] == ["queued"] * 3
