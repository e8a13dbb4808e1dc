"""Outgoing mail goes on the relay session of the mail before, as Postfix's connection cache does,
against a real relay (aiosmtpd on 127.0.0.1) that counts its connections, RSETs, STARTTLS and QUITs.

Each mail had its own connection: the 41 failure notices of one bulk send were 41 connections,
EHLOs and TLS handshakes at the company's Postfix.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.config import parse_config
from gateway.configservices import MailSection
from gateway.daemon import Daemon
from gateway.mailer import SmtpRelayMailer
from gateway.mailtransaction import PermanentMailError
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.certs import make_cert_pair
from tests.conftest import STAFF, Sink, config_text, free_port

SENDER = "smsgw@sms.example.com"
GONE = "gone@acme.example"


class CountingRelay(Sink):
    """The conftest sink that refuses RCPT to GONE (550) and counts what each session did."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0
        self.rsets = 0
        self.starttls = 0
        self.quits = 0
        self.tls: list[bool] = []
        self.sessions: list[CountingSMTP] = []
        self.next_command: str | None = None  # "RSET" or "MAIL": answered 421 once, and the session closed

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == GONE:
            return "550 5.1.1 <gone@acme.example>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)

    def drop_all(self) -> None:
        """The relay ends every open session while idle, as Postfix at smtpd_timeout: 421, then closed."""
        for server in self.sessions:
            if server.transport is not None and not server.transport.is_closing():
                server.transport.write(b"421 4.4.2 relay.test Error: timeout exceeded\r\n")
                server.transport.close()

    def texts(self) -> list[bytes]:
        return [content for _from, _to, content in self.messages]


class CountingSMTP(SMTP):
    def __init__(self, relay: CountingRelay, **kw: Any) -> None:
        super().__init__(relay, hostname="relay.test", **kw)
        self.relay = relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the TLS transport STARTTLS makes
            self.relay.connections += 1
            self.relay.sessions.append(self)
        super().connection_made(transport)

    async def _refused_for_good(self, command: str) -> bool:
        if self.relay.next_command != command:
            return False
        self.relay.next_command = None
        await self.push("421 4.3.2 relay.test Service shutting down, closing transmission channel")
        assert self.transport is not None
        self.transport.close()
        return True

    async def smtp_RSET(self, arg: str) -> None:
        self.relay.rsets += 1
        if not await self._refused_for_good("RSET"):
            await super().smtp_RSET(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not await self._refused_for_good("MAIL"):
            await super().smtp_MAIL(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        self.relay.starttls += 1
        await super().smtp_STARTTLS(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        self.relay.quits += 1
        await super().smtp_QUIT(arg)


@asynccontextmanager
async def counting_relay(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[CountingRelay, int]]:
    relay, port = CountingRelay(), free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: CountingSMTP(relay, tls_context=tls), "127.0.0.1", port
    )
    try:
        yield relay, port
    finally:
        server.close()
        await server.wait_closed()


def relay_mailer(port: int, section: MailSection | None = None, **kw: Any) -> SmtpRelayMailer:
    return SmtpRelayMailer(section or MailSection(relay=f"127.0.0.1:{port}"), "gw.example", **kw)


def mail(n: int) -> bytes:
    return f"Subject: notice {n}\r\n\r\nnotice {n}\r\n".encode()


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def sent(send: Awaitable[None]) -> None:
    await asyncio.wait_for(send, 30)


async def test_mails_one_after_another_go_on_one_connection(tmp_path: Path) -> None:
    async with counting_relay() as (relay, port):
        mailer = relay_mailer(port)
        for n in range(20):
            await sent(mailer.send(SENDER, STAFF, mail(n)))
        assert relay.connections == 1
        assert relay.texts() == [mail(n) for n in range(20)]  # each once, in order
        assert relay.rsets == 19  # each mail after the first begins with RSET
        await mailer.close()
        await until(lambda: relay.quits == 1)


@asynccontextmanager
async def gateway_with(mailer: SmtpRelayMailer, tmp_path: Path, relay_port: int) -> AsyncIterator[Daemon]:
    """The daemon (`tests.conftest.running_gateway`) with the given mailer, sending to the relay."""
    text = config_text(tmp_path, smsc_port=1, relay_port=relay_port)
    daemon = Daemon(parse_config(text, source="test config", base_dir=tmp_path))
    daemon.mailer = mailer
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await asyncio.wait_for(daemon.ready.wait(), 20)
    try:
        yield daemon
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_the_outbox_sends_a_bulk_of_mail_on_its_sends_at_a_time_and_quits_them_at_stop(
    tmp_path: Path,
) -> None:
    # 20 mails queued at once go on at most the worker's 8 sends at a time; the sessions stay
    # open for the next mail (kept long here, as a slow machine must not close them on its own)
    # and hear QUIT when the daemon stops.
    async with counting_relay() as (relay, port):
        mailer = relay_mailer(port, idle_seconds=60)
        async with gateway_with(mailer, tmp_path, port) as daemon:
            box = daemon.store.outbox
            await daemon.store.write(
                lambda: [box.enqueue_mail("notice", SENDER, STAFF, mail(n)) for n in range(20)]
            )
            await relay.wait(20)
            assert 1 <= relay.connections <= 8  # OutboxWorker's concurrency
            await until(lambda: len(mailer.sessions) == relay.connections)
            assert relay.quits == 0  # kept for the next mail

            def states() -> list[tuple[str, int]]:
                return daemon.store.db.conn.execute("SELECT state, attempts FROM outbox").fetchall()

            # The relay has the 20th mail a moment before its 250 is read and recorded.
            await until(lambda: states() == [("sent", 1)] * 20)
        assert relay.quits == relay.connections  # the stop said QUIT on each
        assert len(mailer.sessions) == 0
    assert sorted(relay.texts()) == sorted(mail(n) for n in range(20))


@pytest.mark.parametrize("how", ["closed-while-idle", "421-to-RSET", "421-to-MAIL"])
async def test_a_session_the_relay_ended_while_idle_costs_the_next_mail_no_attempt(
    tmp_path: Path, how: str
) -> None:
    # The relay closed the kept session (its timeout, a restart) or answers its next command 421:
    # none of the next mail reached it, so it goes at once on a new connection, sent once, and the
    # outbox counts one attempt; the new session is kept in turn.
    store = Store.open(tmp_path / "db.sqlite")
    store.db.serve()
    async with counting_relay() as (relay, port):
        mailer = relay_mailer(port, idle_seconds=60)
        worker = OutboxWorker(store, mailer)
        running = asyncio.create_task(worker.run())
        try:
            for n in range(3):
                if n == 1:
                    if how == "closed-while-idle":
                        relay.drop_all()
                    else:
                        relay.next_command = how.removeprefix("421-to-")
                await store.write(lambda n=n: store.outbox.enqueue_mail("notice", SENDER, STAFF, mail(n)))
                worker.wake()
                await relay.wait(n + 1)
            query = "SELECT state, attempts, last_error FROM outbox"
            await until(lambda: [r[0] for r in store.db.conn.execute(query)] == ["sent"] * 3)
            assert store.db.conn.execute(query).fetchall() == [("sent", 1, None)] * 3
            assert relay.texts() == [mail(0), mail(1), mail(2)]
            assert relay.connections == 2  # the third mail went on the second session
            assert relay.next_command is None  # the 421 was given
        finally:
            await worker.stop()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await worker.close()  # the daemon's stop
            store.close()


async def test_a_refused_recipient_leaves_the_session_for_the_next_mail_after_rset(tmp_path: Path) -> None:
    async with counting_relay() as (relay, port):
        mailer = relay_mailer(port)
        with pytest.raises(PermanentMailError, match="550"):
            await sent(mailer.send(SENDER, GONE, mail(0)))
        await sent(mailer.send(SENDER, STAFF, mail(1)))
        assert relay.connections == 1 and relay.rsets == 1
        assert relay.messages == [(SENDER, [STAFF], mail(1))]  # the refused recipient left nothing
        await mailer.close()


async def test_a_session_idle_past_its_time_is_ended_with_quit(tmp_path: Path) -> None:
    async with counting_relay() as (relay, port):
        mailer = relay_mailer(port, idle_seconds=0.3)
        await sent(mailer.send(SENDER, STAFF, mail(0)))
        assert relay.quits == 0  # open for the next mail
        assert len(mailer.sessions) == 1
        await until(lambda: relay.quits == 1, timeout=5)
        assert len(mailer.sessions) == 0
        await sent(mailer.send(SENDER, STAFF, mail(1)))  # a new connection after the idle time
        assert relay.connections == 2
        await mailer.close()
        assert relay.quits == 2


async def test_a_session_is_ended_after_its_share_of_mails(tmp_path: Path) -> None:
    async with counting_relay() as (relay, port):
        mailer = relay_mailer(port, mails_per_session=3)
        for n in range(7):
            await sent(mailer.send(SENDER, STAFF, mail(n)))
        assert (relay.connections, relay.quits) == (3, 2)
        assert relay.texts() == [mail(n) for n in range(7)]
        await mailer.close()


@pytest.fixture(scope="module")
def relay_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*make_cert_pair(tmp_path_factory.mktemp("tls")))
    return context


@pytest.mark.parametrize("starttls", ["when-offered", "required"])
async def test_several_mails_over_starttls_take_one_handshake(
    tmp_path: Path, relay_tls: ssl.SSLContext, starttls: str
) -> None:
    tls = {} if starttls == "when-offered" else {"relay_starttls": True, "relay_tls_verify": False}
    async with counting_relay(relay_tls) as (relay, port):
        mailer = relay_mailer(port, MailSection(relay=f"127.0.0.1:{port}", **tls))
        for n in range(5):
            await sent(mailer.send(SENDER, STAFF, mail(n)))
        assert (relay.connections, relay.starttls) == (1, 1)
        assert relay.tls == [True] * 5  # the kept session stays encrypted
        await mailer.close()
