"""A `421` given while the daemon stops closes the session (RFC 5321 3.8, 4.2.2), on both ports.

With the relay port in the daemon (`intake_processes = 0`), a session still open at SIGTERM heard
`421 4.3.2` to MAIL (or to the end of its DATA) and stayed open: its next RCPT heard a permanent
`503 5.5.1 need MAIL command`, DATA another. A real client talks to the real listeners over TCP;
a submit held unanswered by the SMSC keeps the daemon in its stop (after it stopped taking mail,
before it closes the sessions left) while the client speaks.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest

from acl.passwords import hash_password
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, Running, mail, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_submission import submission_config

PASSWORD = "Tr0ub4dor&3-horse"
RCPT = f"601123456@{DOMAIN}"
SHUTTING_DOWN = replies.SHUTTING_DOWN.encode("ascii") + b"\r\n"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


class Client:
    """A raw SMTP client on asyncio streams: the gateway runs on this loop, and every byte it
    answers (or the close after it) is seen as sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        assert (await client.reply()).startswith(b"220")
        return client

    async def reply(self) -> bytes:
        """One whole reply, its continuation lines included (b"" once the server has closed)."""
        lines = b""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            lines += line
            if line[3:4] != b"-":
                return lines

    async def command(self, line: str) -> bytes:
        self.writer.write(line.encode("ascii") + b"\r\n")
        return await self.reply()

    async def starttls(self, tls: tuple[Path, Path]) -> None:
        assert (await self.command("STARTTLS")).startswith(b"220")
        await self.writer.start_tls(
            ssl.create_default_context(cafile=str(tls[0])), server_hostname="127.0.0.1"
        )

    async def closed_after_421(self) -> bytes:
        """What the server says to one more command after its 421: nothing, the channel is closed."""
        try:
            self.writer.write(f"RCPT TO:<{RCPT}>\r\n".encode("ascii"))
            await self.writer.drain()
        except ConnectionError:
            pass
        try:
            return await asyncio.wait_for(self.reader.readline(), 5)
        except ConnectionError:
            return b""

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def stopping_gateway(tmp_path: Path, tls: tuple[Path, Path]) -> AsyncIterator[tuple[Running, HeldSMSC]]:
    """A gateway with the relay port in the daemon and one submit on the wire, unanswered: a stop
    waits for its answer, which `stop_and_wait` gives once the test has spoken."""
    async with HeldSMSC() as smsc:
        cfg = submission_config(tmp_path, smsc.port, tls, intake_processes=0)
        assert cfg.smtp.intake_processes == 0
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(f"601999888@{DOMAIN}", "On the wire at stop"))).error is None
            await smsc.wait_for(1)
            yield gw, smsc


async def begin_stop(gw: Running) -> None:
    """SIGTERM's path: the daemon stops taking mail, and stays in its stop (the held submit)."""
    gw.stop.set()
    for _ in range(2000):
        if gw.daemon.gate.closing:
            return
        await asyncio.sleep(0.005)
    pytest.fail("the daemon did not begin to stop")


async def finish_stop(gw: Running, smsc: HeldSMSC) -> None:
    assert not gw.task.done()  # the 421 came from the handler, not from the last close of the stop
    smsc.answer(1)
    await asyncio.wait_for(gw.task, 30)


async def relay_client(gw: Running) -> Client:
    client = await Client.open(gw.port)
    assert (await client.command("EHLO client.example")).startswith(b"250")
    return client


async def test_relay_mail_at_shutdown_hears_421_and_the_channel_closes(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    async with stopping_gateway(tmp_path, tls_pair) as (gw, smsc):
        client = await relay_client(gw)
        await begin_stop(gw)
        assert await client.command(f"MAIL FROM:<{STAFF}>") == SHUTTING_DOWN
        assert await client.closed_after_421() == b""  # was: 503 5.5.1 need MAIL command
        client.close()
        await finish_stop(gw, smsc)


async def test_a_pipelined_group_at_shutdown_hears_one_421_then_the_close(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    # RFC 2920: MAIL, RCPT and DATA in one write. MAIL's 421 is not held for the group's replies.
    async with stopping_gateway(tmp_path, tls_pair) as (gw, smsc):
        client = await relay_client(gw)
        await begin_stop(gw)
        client.writer.write(f"MAIL FROM:<{STAFF}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode("ascii"))
        assert await client.reply() == SHUTTING_DOWN
        assert await asyncio.wait_for(client.reader.read(), 5) == b""
        client.close()
        await finish_stop(gw, smsc)


async def test_relay_data_ended_at_shutdown_hears_421_and_the_channel_closes(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    async with stopping_gateway(tmp_path, tls_pair) as (gw, smsc):
        client = await relay_client(gw)
        assert (await client.command(f"MAIL FROM:<{STAFF}>")).startswith(b"250")
        assert (await client.command(f"RCPT TO:<{RCPT}>")).startswith(b"250")
        assert (await client.command("DATA")).startswith(b"354")
        client.writer.write(
            f"From: {STAFF}\r\nTo: {RCPT}\r\n\r\nSent as the daemon stops\r\n".encode("ascii")
        )
        await begin_stop(gw)
        assert await client.command(".") == SHUTTING_DOWN
        assert await client.closed_after_421() == b""
        client.close()
        await finish_stop(gw, smsc)
    with closing(sqlite3.connect(gw.config.gateway.state_dir / "smsgw.db")) as db:
        assert db.execute("SELECT count(*) FROM emails").fetchone() == (1,)  # the held one only


async def test_submission_mail_at_shutdown_hears_421_and_the_channel_closes(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    async with stopping_gateway(tmp_path, tls_pair) as (gw, smsc):
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, password_hash=hash_password(PASSWORD)))
        client = await Client.open(gw.daemon.submission_port)
        assert (await client.command("EHLO outlook.test")).startswith(b"250")
        await client.starttls(tls_pair)
        assert (await client.command("EHLO outlook.test")).startswith(b"250")
        login = base64.b64encode(f"\0{STAFF}\0{PASSWORD}".encode()).decode()
        assert (await client.command(f"AUTH PLAIN {login}")).startswith(b"235")
        await begin_stop(gw)
        assert await client.command(f"MAIL FROM:<{STAFF}>") == SHUTTING_DOWN
        assert await client.closed_after_421() == b""
        client.close()
        await finish_stop(gw, smsc)
