"""A relay that drops the connection in the middle of a mail's DATA, before its end was sent: the mail
was not delivered and is simply tried again, not taken for one the relay may have stored.

The relay is a small SMTP server on 127.0.0.1 written with asyncio streams, as aiosmtpd cannot be
told to reset the link after part of a body; STARTTLS included, as a company relay has it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from gateway import mailtransaction, outboxworker
from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.certs import make_cert_pair
from tests.conftest import free_port

# A monthly billing mail: some 2.9 MB of body.
BILLING = b"Subject: billing\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40000
FIRST_CHUNK = 65536  # what the relay reads of the body before it resets the link


class DroppingRelay:
    """Resets the connection after the first FIRST_CHUNK bytes of DATA, `drops` times; then takes
    mail whole. `ends` counts the ends of mail (the final dot) it ever read."""

    def __init__(self, drops: int, tls: ssl.SSLContext | None = None) -> None:
        self.drops, self.tls = drops, tls
        self.read: list[int] = []
        self.ends = 0
        self.taken: list[bytes] = []

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._converse(reader, writer)
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-relay.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            elif verb == b"STAR" and self.tls is not None:
                writer.write(b"220 2.0.0 go ahead\r\n")
                await writer.drain()
                await writer.start_tls(self.tls)
                continue
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                if self.drops > 0:
                    self.drops -= 1
                    chunk = await reader.read(FIRST_CHUNK)
                    self.read.append(len(chunk))
                    self.ends += chunk.endswith(b"\r\n.\r\n")
                    writer.transport.abort()  # an RST: the link is gone mid-body
                    return
                body = await reader.readuntil(b"\r\n.\r\n")
                self.ends += 1
                self.taken.append(body)
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(b"250 2.0.0 OK\r\n")
            await writer.drain()


@asynccontextmanager
async def dropping_relay(relay: DroppingRelay) -> AsyncIterator[int]:
    port = free_port()
    # A body of megabytes is read line by line at the end: the stream's default limit is 64 KiB.
    server = await asyncio.start_server(relay.session, "127.0.0.1", port, limit=len(BILLING) * 2)
    try:
        yield port
    finally:
        server.close()
        await asyncio.sleep(0.1)  # the sessions close their side


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*make_cert_pair(tmp_path_factory.mktemp("tls")))
    return context


def relay_mailer(port: int, starttls: bool) -> SmtpRelayMailer:
    tls = {"relay_starttls": True, "relay_tls_verify": False} if starttls else {}
    return SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}", **tls), "gw.example")


@pytest.mark.parametrize("starttls", [False, True], ids=["plain", "starttls"])
async def test_a_link_lost_before_the_end_of_the_mail_was_sent_is_not_a_possible_delivery(
    starttls: bool, server_tls: ssl.SSLContext
) -> None:
    # The body and its final dot went to the transport in one write: the kernel took megabytes at
    # once, and the reset after 64 KiB was read as "the relay took the whole mail and may have
    # delivered it". The dot now goes only after the relay's host has all of the body.
    relay = DroppingRelay(drops=1, tls=server_tls if starttls else None)
    async with dropping_relay(relay) as port:
        with pytest.raises(aiosmtplib.SMTPServerDisconnected) as lost:
            await asyncio.wait_for(relay_mailer(port, starttls).send("", "billing@acme.pl", BILLING), 30)
    assert str(lost.value) == (
        "the relay closed the connection before the end of the mail was sent; it was not delivered"
    )
    assert relay.read and relay.read[0] <= FIRST_CHUNK and relay.ends == 0


async def test_a_billing_mail_whose_relay_resets_mid_body_is_tried_again_until_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three resets in the middle of the body made it "given up after 3 tries, 3 of them unanswered
    # (it has most likely arrived)": no fallback copy, skipped by `outbox retry --all`, the month's
    # billing lost. Each reset is now a plain try again, and the fourth send delivers it, once.
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: 0.05)
    now = [1_800_000_000.0]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: now[0])
    relay = DroppingRelay(drops=3)
    try:
        async with dropping_relay(relay) as port:
            mail_id = store.outbox.enqueue_mail("billing", "gw@sms.example.com", "billing@acme.pl", BILLING)
            worker = OutboxWorker(store, relay_mailer(port, starttls=False))
            with capture_logs() as logs:
                task = asyncio.create_task(worker.run())
                try:
                    for _ in range(300):
                        await asyncio.sleep(0.1)
                        now[0] += 1.0
                        row = store.db.conn.execute(
                            "SELECT state, attempts, unanswered FROM outbox WHERE id = ?", (mail_id,)
                        ).fetchone()
                        if row[0] in ("sent", "failed"):
                            break
                finally:
                    await worker.stop()
                    task.cancel()
        assert row == ("sent", 4, 0)
        assert len(relay.read) == 3 and relay.ends == 1 and len(relay.taken) == 1
        assert not [e for e in logs if e["event"] == "outbox.possible_duplicate"]
        deferred = [e["error"] for e in logs if e["event"] == "mail.deferred"]
        assert len(deferred) == 3 and all("it was not delivered" in e for e in deferred)
    finally:
        store.close()


async def test_a_relay_that_stops_reading_the_body_is_left_for_a_retry_without_the_end_of_the_mail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The wait for the body to leave is bounded: a relay that stops reading holds no send (nor the
    # worker's slot) for longer, and as its end never went, the mail was not delivered.
    monkeypatch.setattr(mailtransaction, "UPLOAD_TIMEOUT", 1.0)
    stopped = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        while line := await reader.readline():
            if line[:4].upper() == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                await stopped.wait()  # reads nothing more, the link stays up
                break
            writer.write(b"250 2.0.0 OK\r\n")
            await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(session, "127.0.0.1", port)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(
            aiosmtplib.SMTPTimeoutError, match="its end was not sent, so it was not delivered"
        ):
            await asyncio.wait_for(
                relay_mailer(port, starttls=False).send("", "billing@acme.pl", BILLING), 30
            )
        assert asyncio.get_running_loop().time() - started < 10
    finally:
        stopped.set()
        server.close()
        await asyncio.sleep(0.1)  # the session closes its side
