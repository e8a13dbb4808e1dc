"""A mail the relay answered 250 for while the disk was full: its record waits for room, and the mail
is not sent again. A real relay (aiosmtpd on the test's loop), the real daemon or worker, a real
SQLite file.

The record failed, the send's task with it, and the outbox worker crashed; its restart put the
mail, still `active`, back in the queue as cut off by a crash, and once there was room the relay
got every such phone answer and bounce a second time.

The store is made full as in tests/test_disk_full_health.py: `PRAGMA max_page_count` at its current
size, on the daemon's own connection. That refuses only a write that needs a new page, and marking
a mail sent changes rows in place: so the outbox holds the history of a gateway that has answered
for a while, its pages packed by VACUUM (no free page, every index page full), and the mail's
index entries, which move from `active` to `sent` in the middle of that history, need a new page,
as on a disk with no room at all.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.conftest import Sink, free_port, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

NO_LIMIT = 1073741823  # SQLite's default max_page_count
HISTORY = 2000  # mail sent before, around the one under test in the outbox's indexes
BOUNCE = b"From: gw@sms.example.com\r\nTo: staff@acme.example\r\nSubject: Undelivered SMS\r\n\r\nnot sent\r\n"


def fill_history(store: Store) -> None:
    """Mail sent over the past and queued for later, due on both sides of now."""
    now = store.clock()
    rows = [(now - HISTORY + 2 * i, now - HISTORY + 2 * i, now) for i in range(HISTORY)]
    with store.outbox.transaction():
        store.outbox.conn.executemany(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at, sent_at)"
            " VALUES ('bounce', 'gw@sms.example.com', 'old@acme.example', x'00', 'sent', ?, ?, ?)",
            rows,
        )


def fill_store(store: Store) -> None:
    """No room left: every page packed, none free, and the file may not grow."""
    conn = store.db.conn
    conn.execute("VACUUM")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def free_store(store: Store) -> None:
    store.db.conn.execute(f"PRAGMA max_page_count = {NO_LIMIT}")


class FillingRelay(Sink):
    """Takes each mail and answers 250; the disk fills while it has the first one."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.messages:
            fill_store(self.store)  # on the loop's thread, as the daemon's connection requires
        return await super().handle_DATA(server, session, envelope)


def mailer(port: int) -> SmtpRelayMailer:
    return SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.test")


def state_of(store: Store, mail_id: int) -> str:
    return str(store.db.conn.execute("SELECT state FROM outbox WHERE id = ?", (mail_id,)).fetchone()[0])


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_a_mail_the_relay_took_while_the_disk_was_full_goes_once(tmp_path: Path) -> None:
    relay_port = free_port()
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=relay_port)) as gw,
    ):
        store: Store = gw.store
        relay = FillingRelay(store)
        async with smtp_sink(relay_port, relay):
            await store.write(lambda: fill_history(store))
            with capture_logs() as logs:
                mail_id = await store.write(
                    lambda: store.outbox.enqueue_mail("bounce", "", "staff@acme.example", BOUNCE)
                )
                await relay.wait(1)
                # The record is refused (the worker crashed on it before): room again after that.
                await gw.until(
                    lambda: any(e["event"] in ("outbox.record_retry", "worker.crashed") for e in logs)
                )
                free_store(store)
                # Its line follows the fsync: the row reads `sent` on the loop's connection before.
                await gw.until(
                    lambda: state_of(store, mail_id) == "sent" and bool(events(logs, "outbox.recorded"))
                )
                # Marked sent only after the relay's answer: a second send would be in the relay now.
            assert len(relay.messages) == 1, "the relay got the mail again"
            assert gw.daemon.supervisor.workers["outbox"].restarts == 0
    assert not events(logs, "outbox.possible_duplicate")
    (retry,) = events(logs, "outbox.record_retry")  # one line, however many tries
    assert retry["mail"] == mail_id and retry["state"] == "sent" and "full" in retry["error"]
    (recorded,) = events(logs, "outbox.recorded")
    assert recorded["mail"] == mail_id and recorded["refused"] >= 1
    (sent,) = events(logs, "mail.sent")
    assert sent["mail"] == mail_id


async def test_a_stop_while_the_disk_stays_full_says_which_mail_goes_again(tmp_path: Path) -> None:
    # The stop cannot wait for room for ever: the mail stays `active`, as after a crash, and the
    # next start sends it once more as a possible duplicate. The stop says so, naming the mail.
    store = Store.open(tmp_path / "smsgw.db")
    relay = FillingRelay(store)
    relay_port = free_port()
    try:
        async with smtp_sink(relay_port, relay):
            fill_history(store)
            mail_id = store.outbox.enqueue_mail("bounce", "", "staff@acme.example", BOUNCE)
            worker = OutboxWorker(
                store, SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{relay_port}"), "gw.test")
            )
            with capture_logs() as logs:
                task = asyncio.create_task(worker.run())
                await relay.wait(1)
                deadline = time.monotonic() + 20
                while not events(logs, "outbox.record_retry") and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert not task.done(), "the worker gave up on the relay's answer"
                assert await worker.stop(timeout=1.0) is False
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            (unwritten,) = events(logs, "outbox.outcome_unwritten")
            assert unwritten["mails"] == {mail_id: "sent"}
            assert state_of(store, mail_id) == "active"

            # The next start: room again, the mail goes once more, said to be a possible duplicate.
            free_store(store)
            assert await store.write(store.outbox.recover_mail) == 1
            again = OutboxWorker(
                store, SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{relay_port}"), "gw.test")
            )
            with capture_logs() as logs:
                task = asyncio.create_task(again.run())
                await relay.wait(2)
                deadline = time.monotonic() + 20
                while state_of(store, mail_id) != "sent" and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert await again.stop(timeout=5.0)
                await task
            assert state_of(store, mail_id) == "sent" and len(relay.messages) == 2
            (dup,) = events(logs, "outbox.possible_duplicate")
            assert dup["mail"] == mail_id
    finally:
        store.close()
