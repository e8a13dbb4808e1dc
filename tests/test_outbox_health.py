"""A relay that takes no mail for half an hour is trouble, said where an operator looks.

With the relay down for a day and thousands of answers and bounces waiting, `smsgw status` exited 0,
/healthz said ok, the dashboard listed "Nothing." needing attention and /metrics had only counts:
a monitoring check reading the exit code never fired. The daemon runs against a relay address
nobody listens on; the waiting mail is made old in the store (its queue time), not by waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.config import load_config
from gateway.store.db import Store
from gateway.store.outboxhealth import DAY, FAILED_SINCE, outbox_health
from tests.conftest import DOMAIN, STAFF, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_status_exit import links_up
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

RELAY_DOWN = "SMTPConnectError('Error connecting to relay.example on port 25: Connection refused')"
GREYLISTED = "SMTPRecipientsRefused({'u@acme.example': (450, '4.2.0 Greylisted')})"


async def test_mail_waiting_half_an_hour_for_the_relay_is_trouble_everywhere(tmp_path: Path) -> None:
    async with HappySMSC(fail_suffixes=("13",)) as smsc:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, extra=WEB))
        async with running_gateway(load_config(config)) as gw:
            store = gw.store
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
            )
            assert (await gw.send(mail(f"601123413@{DOMAIN}", "to a phone that fails"))).error is None
            deferred = "SELECT id, last_error FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
            await gw.until(lambda: store.db.conn.execute(deferred).fetchone() is not None, timeout=15)
            # The status file written at the start says the link is connecting (exit 1) until its
            # next write: with the tests' files on a RAM disk the mail was deferred before it.
            await gw.until(lambda: links_up(gw.config.state_dir))
            fresh = await asyncio.to_thread(smsgw, config, "status")
            (mail_id, error) = store.db.conn.execute(deferred).fetchone()
            await store.write(
                lambda: store.db.conn.execute(
                    "UPDATE outbox SET created_at = ? WHERE id = ?", (time.time() - 3600, mail_id)
                )
            )
            stuck = await asyncio.to_thread(smsgw, config, "status")
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            async with httpx.AsyncClient(base_url=base) as c:
                metrics = (await c.get("/metrics")).text
                assert (await login(c, STAFF)).status_code == 303
                dashboard = (await c.get("/")).text
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr  # a mail deferred a moment ago: no trouble
    assert stuck.returncode == 1, stuck.stdout + stuck.stderr
    assert "trouble: mail has waited over 30 min for the relay; the relay's last answer:" in stuck.stdout
    assert "Connect" in error and "last answer: [mail] relay 127.0.0.1:" in stuck.stdout
    [oldest] = [line for line in metrics.splitlines() if line.startswith("smsgw_outbox_oldest_seconds ")]
    assert float(oldest.split()[1]) >= 3600
    assert 'id="outbox"' in dashboard and "waiting for the relay, the oldest for 60 min" in dashboard, (
        dashboard
    )
    assert "<p>Nothing.</p>" not in dashboard


class Greylisting(Sink):
    """A relay that takes mail, but defers one recipient (450 greylisted) every time."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("grey@"):
            return "450 4.2.0 Try later, greylisted"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


async def test_one_recipient_deferred_for_long_is_no_trouble_while_the_relay_takes_mail(
    tmp_path: Path,
) -> None:
    # A greylisted or full mailbox kept `status` failing for the five days of that mail's retries,
    # with the dashboard telling the operator to check the relay, which delivered everything else.
    port = free_port()
    async with HappySMSC() as smsc, smtp_sink(port, Greylisting()) as relay:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        async with running_gateway(load_config(config)) as gw:
            store = gw.store
            for rcpt in ("grey@acme.example", "anna@acme.example"):
                await store.write(
                    lambda r=rcpt: store.outbox.enqueue_mail("notice", "", r, b"Subject: x\r\n\r\nx\r\n")
                )
            deferred = "SELECT id FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
            await gw.until(lambda: store.db.conn.execute(deferred).fetchone() is not None and relay.messages)
            (grey,) = store.db.conn.execute(deferred).fetchone()
            await store.write(
                lambda: store.db.conn.execute(
                    "UPDATE outbox SET created_at = created_at - 3600 WHERE id = ?", (grey,)
                )
            )
            # The status file must show the link bound: a link still connecting is trouble of its own.
            await gw.until(lambda: links_up(gw.config.state_dir))
            res = await asyncio.to_thread(smsgw, config, "status")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "the relay defers some recipients; the relay's last answer: 450 4.2.0 Try later, greylisted" in (
        res.stdout
    ), res.stdout


class RefusingEveryone(Sink):
    """A relay that relays for nobody: every RCPT refused, the mail never taken."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return f"554 5.7.1 <{address}>: Relay access denied"


async def test_a_relay_that_refuses_every_recipient_is_trouble(tmp_path: Path) -> None:
    # Each refusal reads as the recipient's matter (SMTPRecipientsRefused), and with no mail taken
    # since, status said "the relay defers some recipients" and exited 0 for the five days.
    port = free_port()
    async with HappySMSC() as smsc, smtp_sink(port, RefusingEveryone()):
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        async with running_gateway(load_config(config)) as gw:
            store = gw.store
            await store.write(
                lambda: store.outbox.enqueue_mail(
                    "notice", "", "anna@acme.example", b"Subject: x\r\n\r\nx\r\n"
                )
            )
            deferred = "SELECT id FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
            await gw.until(lambda: store.db.conn.execute(deferred).fetchone() is not None)
            await store.write(
                lambda: store.db.conn.execute("UPDATE outbox SET created_at = created_at - 3600")
            )
            res = await asyncio.to_thread(smsgw, config, "status")
    assert res.returncode == 1, res.stdout + res.stderr
    assert (
        "trouble: mail has waited over 30 min for the relay; the relay's last answer: 554 5.7.1" in res.stdout
    )


def test_mail_given_up_on_is_counted_by_when_it_failed_not_when_it_was_queued(tmp_path: Path) -> None:
    # A mail refused for five days (452 mailbox full) failed a minute ago but was counted by its queue
    # time: a relay down for five days vanished from `smsgw status` once all its mail had failed.
    t0 = 1_800_000_000.0
    now = [t0]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: now[0])
    try:
        old = store.outbox.enqueue_mail("reply", "gw@x.example", "anna@acme.example", b"x\r\n")
        store.outbox.claim_mail(4)
        now[0] = t0 + 5 * DAY
        new = store.outbox.enqueue_mail("notice", "gw@x.example", "bob@acme.example", b"y\r\n")
        store.outbox.claim_mail(4)
        store.outbox.finish_mail(old, "failed", "452 4.2.2 Mailbox full; 125 attempts")
        store.outbox.finish_mail(new, "failed", "550 5.1.1 User unknown")
        assert outbox_health(store.db.conn, now[0] + 60).failed_day == 2
        assert outbox_health(store.db.conn, now[0] + DAY + 60).failed_day == 0
        # Read off its own index, never the whole outbox (a relay down for days leaves a large one).
        plan = [row[3] for row in store.db.conn.execute(f"EXPLAIN QUERY PLAN {FAILED_SINCE}", (now[0],))]
        assert plan == ["SEARCH outbox USING COVERING INDEX outbox_failed (state=? AND sent_at>?)"], plan
    finally:
        store.close()


def test_a_relay_down_since_a_mail_it_took_just_before_is_still_trouble(tmp_path: Path) -> None:
    # Mail A refused "connection refused" two hours ago, and the relay's last mail taken was one
    # queued a few seconds after A: "taken since the oldest" made status say fine for the hours
    # the relay was down (so it was before a mail waiting for its own sake counted apart).
    now = time.time()
    clock = [now - 7200]
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: clock[0])
    try:
        with store.db.transaction():
            waiting = store.outbox.enqueue_mail("reply", "", "a@example.com", b"A")
            clock[0] += 5
            taken = store.outbox.enqueue_mail("reply", "", "b@example.com", b"B")
            error = "SMTPConnectError(Error connecting to 127.0.0.1 on port 25; Connection refused)"
            store.db.conn.execute("UPDATE outbox SET last_error = ? WHERE id = ?", (error, waiting))
            sent = "UPDATE outbox SET state = 'sent', sent_at = ? WHERE id = ?"
            store.db.conn.execute(sent, (clock[0], taken))
        health = outbox_health(store.db.conn, now)
    finally:
        store.close()
    assert health.fault_kind == "unreachable" and not health.relay_ok
    assert health.stuck_for(now) is not None and health.stuck_for(now) >= 7200 - 1


def test_the_health_look_prepares_its_statements_once(tmp_path: Path) -> None:
    # Its look for the relay's own faults bound the errors' LIKE patterns: SQLite prepares such a
    # statement again at every run (the plan may depend on the pattern), some 0.6 M instructions each
    # time, a third of what the daemon did between mails while it waited for a relay down.
    now = time.time()
    store = Store.open(tmp_path / "smsgw.db")
    try:
        conn = store.db.conn
        with store.db.transaction():
            for error in (RELAY_DOWN, GREYLISTED):
                conn.execute(
                    "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
                    " created_at, last_error)"
                    " VALUES ('reply', '', 'u@acme.example', x'', 'queued', 3, ?, ?, ?)",
                    (now + 600, now - 7200, error),
                )
        compiled: list[int] = []

        def authorize(*_args: object) -> int:
            compiled.append(1)  # called for each table and column as a statement is prepared
            return sqlite3.SQLITE_OK

        conn.set_authorizer(authorize)
        first = outbox_health(conn, now)
        compiled.clear()
        again = outbox_health(conn, now + 1)
        conn.set_authorizer(None)
    finally:
        store.close()
    assert first.relay_fault and first.last_error == RELAY_DOWN and first.waiting == 2
    assert again == first
    assert compiled == []
