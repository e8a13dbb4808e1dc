"""Mail deferred for the relay's faults, and a restart with `[mail] relay` fixed: the daemon against a
real relay (aiosmtpd on 127.0.0.1) or a port where nothing listens, on a real database file.

Only a send that succeeded woke mail deferred for the relay's faults, so after a restart with no
other mail to send it sat out back-offs of up to an hour that were waiting for the old relay.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.config import Config, load_config
from gateway.store.db import Store
from tests.conftest import Sink, config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

SENDER = "smsgw@sms.example.com"
DOWN = "SMTPConnectError('Error connecting to 127.0.0.1 on port 2525: [Errno 111] Connection refused')"
GREYLISTED = "SMTPRecipientsRefused({'grey@acme.example': (450, 'greylisted')})"
HOUR_CAP_LEFT = 3300.0  # as after hours of outage: the back-off's hour cap, 55 minutes still to wait


def deferred_outbox(cfg: Config) -> tuple[list[int], int]:
    """Three mails deferred for the relay being down, and one for its recipient's greylisting, each
    with most of an hour to wait; their ids."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path)
    try:
        box, later = store.outbox, time.time() + HOUR_CAP_LEFT
        body = b"Subject: answer\r\n\r\nx\r\n"
        down = [box.enqueue_mail("reply", SENDER, f"u{n}@acme.example", body) for n in range(3)]
        grey = box.enqueue_mail("reply", SENDER, "grey@acme.example", body)
        with store.db.transaction():
            for mail_id, error in [*((m, DOWN) for m in down), (grey, GREYLISTED)]:
                store.db.conn.execute(
                    "UPDATE outbox SET attempts = 9, next_attempt_at = ?, last_error = ? WHERE id = ?",
                    (later, error, mail_id),
                )
    finally:
        store.close()
    return down, grey


async def test_mail_deferred_for_the_old_relay_goes_at_once_after_a_restart_with_it_fixed(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with HappySMSC() as smsc, smtp_sink(port) as relay:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        cfg = load_config(config)
        down, grey = deferred_outbox(cfg)
        async with running_gateway(cfg) as gw:
            await relay.wait(3, timeout=20)
            conn = gw.store.db.conn
            await gw.until(
                lambda: conn.execute("SELECT count(*) FROM outbox WHERE state = 'sent'").fetchone()[0] == 3
            )
            rows = dict(conn.execute("SELECT id, state FROM outbox").fetchall())
    assert sorted(r for _f, [r], _c in relay.messages) == [f"u{n}@acme.example" for n in range(3)]
    assert [rows[m] for m in down] == ["sent"] * 3
    assert rows[grey] == "queued"  # the recipient's matter: its back-off is its own


async def test_a_relay_still_down_at_restarts_costs_no_mail_an_attempt(tmp_path: Path) -> None:
    # A daemon restarted again and again (systemd's Restart=on-failure, every 5 s) with the relay
    # down: a mail sent at each start to find out spent its five days' attempts within hours.
    async with HappySMSC() as smsc:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=free_port()))
        cfg = load_config(config)
        deferred_outbox(cfg)
        for _start in range(3):
            with capture_logs() as logs:
                async with running_gateway(cfg) as gw:
                    await gw.until(lambda: any(e["event"] == "outbox.relay_probe_failed" for e in logs))
                    rows = gw.store.db.conn.execute(
                        "SELECT attempts, next_attempt_at > ? FROM outbox ORDER BY id",
                        (time.time() + HOUR_CAP_LEFT - 600,),
                    ).fetchall()
            assert rows == [(9, 1)] * 4  # each waits its back-off, its attempts untouched


class RefusesGone(Sink):
    """A relay that works, refusing one recipient for good (`550 5.1.1`)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, opts: Any) -> str:
        if address.startswith("u0@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_mail_refused_for_its_recipient_proves_the_relay_back(tmp_path: Path) -> None:
    # The mail due first after the relay came back is one its recipient refuses: only a mail taken
    # woke the rest, which waited out their hour though the relay worked.
    port = free_port()
    async with HappySMSC() as smsc, smtp_sink(port, RefusesGone()) as relay:
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        cfg = load_config(config)
        down, grey = deferred_outbox(cfg)
        async with running_gateway(cfg) as gw:
            await relay.wait(2, timeout=20)
            conn = gw.store.db.conn
            sent = "SELECT count(*) FROM outbox WHERE state = 'sent'"
            await gw.until(lambda: conn.execute(sent).fetchone()[0] == 2)
            states = dict(conn.execute("SELECT id, state FROM outbox").fetchall())
    assert [states[m] for m in down] == ["failed", "sent", "sent"]
    assert states[grey] == "queued"
