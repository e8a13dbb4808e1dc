"""Mail deferred for the relay's faults goes as soon as the relay answers again, not after its own
back-off: the daemon against a port where nothing listens, then a real relay (aiosmtpd) on it, on a
real database file.

Only a send the relay took (or a start) woke such mail, so with nothing else to send an answer from
a phone went 87 s after a 130 s outage was over, and up to an hour after a long one. While such mail
waits and nothing is sent the relay is probed (connect, EHLO, AUTH as configured, QUIT); once it
answers, the mail deferred first goes, and once it is taken the rest.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from structlog.testing import capture_logs

from gateway.config import load_config
from gateway.relayfaults import waits_for_relay
from gateway.store.db import Store
from tests.conftest import Sink, config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_relay_fixed_restart import GREYLISTED, HOUR_CAP_LEFT, deferred_outbox

BUSY = "SMTPSenderRefused(452, '4.5.3 Too many mails', 'smsgw@sms.example.com')"
LOGIN_REFUSED = "SMTPAuthenticationError(535, '5.7.8 Authentication credentials invalid')"


@pytest.fixture(autouse=True)
def quick_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY", 0.05)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_mail_deferred_while_the_relay_was_down_goes_once_it_answers_again(tmp_path: Path) -> None:
    port = free_port()
    async with HappySMSC() as smsc:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        cfg = load_config(config)
        down, grey = deferred_outbox(cfg)  # most of an hour still to wait, each
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                conn = gw.store.db.conn
                # The relay still down: probes (the first at the start) fail, and wake nothing.
                await gw.until(lambda: len(events(logs, "outbox.relay_probe_failed")) >= 3)
                assert not events(logs, "outbox.relay_answers")
                async with smtp_sink(port) as relay:
                    sent = "SELECT count(*) FROM outbox WHERE state = 'sent'"
                    await gw.until(lambda: conn.execute(sent).fetchone()[0] == 3)
                rows = dict(conn.execute("SELECT id, attempts FROM outbox").fetchall())
    assert sorted(r for _f, [r], _c in relay.messages) == [f"u{n}@acme.example" for n in range(3)]
    assert [rows[m] for m in down] == [10, 10, 10]  # the probe's wake, then the rest; no herd
    assert rows[grey] == 9  # the recipient's greylisting: its back-off is its own
    (answers,) = events(logs, "outbox.relay_answers")  # said once, at the outage's end
    assert answers["mail"] == down[0]  # due first
    (back,) = events(logs, "outbox.relay_back")
    assert back["due_again"] == 2


async def test_a_probe_refused_its_login_wakes_nothing(tmp_path: Path) -> None:
    # A probe that logs in as a send does: one that did not could not tell a password still wrong.
    port = free_port()
    sink = Sink()
    logins: list[bool] = []

    def authenticator(*_args: Any) -> AuthResult:
        logins.append(False)
        return AuthResult(success=False, handled=False)  # 535

    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test", authenticator=authenticator, auth_require_tls=False),
        "127.0.0.1",
        port,
    )
    try:
        async with HappySMSC() as smsc:
            text = config_text(tmp_path, smsc_port=smsc.port, relay_port=port)
            anchor = f'relay = "127.0.0.1:{port}"\n'
            text = text.replace(anchor, anchor + 'relay_username = "gw"\nrelay_password = "wrong"\n', 1)
            config = tmp_path / "config.toml"
            config.write_text(text)
            cfg = load_config(config)
            deferred_outbox(cfg)
            with capture_logs() as logs:
                async with running_gateway(cfg) as gw:
                    conn = gw.store.db.conn
                    failed = lambda: events(logs, "outbox.relay_probe_failed")  # noqa: E731
                    await gw.until(lambda: len(failed()) >= 3)
                    rows = conn.execute("SELECT attempts, last_error FROM outbox ORDER BY id").fetchall()
    finally:
        server.close()
        await server.wait_closed()
    assert {e["relay_fault"] for e in failed()} == {"login refused"}
    assert [n for n, _error in rows] == [9, 9, 9, 9]  # the probes (the start's too) spent no attempt
    assert not events(logs, "outbox.relay_answers") and sink.messages == []
    assert len(logins) >= 3  # each probe logs in as a send does


def test_no_probe_while_only_mail_a_probe_cannot_clear_waits(tmp_path: Path) -> None:
    # A recipient's greylisting, or the relay's limit at MAIL: a probe sends no MAIL, and waking
    # such mail at every probe would spend its five days' attempts within the hour.
    store = Store.open(tmp_path / "smsgw.db")
    try:
        box = store.outbox
        assert not waits_for_relay(box)  # nothing waits: no probe
        later = time.time() + HOUR_CAP_LEFT
        ids = [
            box.enqueue_mail("reply", "smsgw@sms.example.com", f"u{n}@acme.example", b"x") for n in range(2)
        ]
        with store.db.transaction():
            for mail_id, error in zip(ids, [GREYLISTED, BUSY], strict=True):
                store.db.conn.execute(
                    "UPDATE outbox SET attempts = 9, next_attempt_at = ?, last_error = ? WHERE id = ?",
                    (later, error, mail_id),
                )
        assert not waits_for_relay(box)
        with store.db.transaction():
            store.db.conn.execute("UPDATE outbox SET last_error = ? WHERE id = ?", (LOGIN_REFUSED, ids[1]))
        assert waits_for_relay(box)
    finally:
        store.close()


class ClosingAtMail(Sink):
    """Greets and answers EHLO, then closes at MAIL (421): a probe sees it answering, a send fails."""

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return "421 4.3.2 Service shutting down"


async def test_a_relay_that_greets_but_fails_each_send_costs_one_mail_an_attempt_per_probe(
    tmp_path: Path,
) -> None:
    # The probe cannot see a fault past EHLO: each wake is one mail's attempt, not every waiting mail's.
    port = free_port()
    sink = ClosingAtMail()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", port
    )
    try:
        async with HappySMSC() as smsc:
            config = tmp_path / "config.toml"
            config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
            cfg = load_config(config)
            deferred_outbox(cfg)
            with capture_logs() as logs:
                async with running_gateway(cfg) as gw:
                    conn = gw.store.db.conn
                    woken = lambda: events(logs, "outbox.relay_answers")  # noqa: E731
                    await gw.until(lambda: len(woken()) >= 3)
                    active = "SELECT count(*) FROM outbox WHERE state = 'active'"
                    await gw.until(lambda: conn.execute(active).fetchone()[0] == 0)
                    tries = conn.execute("SELECT sum(attempts) FROM outbox").fetchone()[0]
                    count = len(woken())
    finally:
        server.close()
        await server.wait_closed()
    # One per probe that woke a mail (the last woken perhaps not yet tried).
    assert count - 1 <= tries - 4 * 9 <= count
    assert sink.messages == [] and not events(logs, "outbox.relay_back")
