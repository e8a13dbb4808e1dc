"""A session whose DATA cannot be taken as MAIL let it through: the user removed meanwhile, or a fault
in the write. Each is answered, and the session goes on with a new transaction.

A real SMTP client (raw lines, so that every reply is seen) against the daemon's relay port, with a
fake SMSC over TCP; the user is removed through the store the daemon runs on, as the CLI would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.smtp import relay, replies
from tests.conftest import DOMAIN, STAFF, Running, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

MAIL = f"From: {STAFF}\r\nTo: 601123456@{DOMAIN}\r\nSubject: Hi\r\n\r\nSee you at 10\r\n.\r\n".encode()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> str:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 15)
            lines.append(line.decode().rstrip())
            if line[3:4] != b"-":
                return "\n".join(lines)

    async def cmd(self, line: str | bytes) -> str:
        self.writer.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def transaction(self) -> str:
        """MAIL and RCPT (both taken), DATA's 354: the mail is then the caller's to send."""
        assert (await self.cmd(f"MAIL FROM:<{STAFF}>")).startswith("250")
        assert (await self.cmd(f"RCPT TO:<601123456@{DOMAIN}>")).startswith("250")
        return await self.cmd("DATA")


@asynccontextmanager
async def session(tmp_path: Path) -> AsyncIterator[tuple[Running, HappySMSC, Client]]:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        client = Client(reader, writer)
        assert (await client.reply()).startswith("220")
        assert (await client.cmd("EHLO client.example")).startswith("250")
        try:
            yield gw, smsc, client
        finally:
            writer.close()


async def test_a_user_removed_between_mail_and_data_is_refused_without_a_fault(tmp_path: Path) -> None:
    # The write named a user that no longer existed: the foreign key refused it, a traceback was
    # logged at error, the client got 451 and tried again for days.
    async with session(tmp_path) as (gw, smsc, client):
        assert (await client.transaction()).startswith("354")
        await gw.store.write(lambda: gw.store.accounts.remove_user(STAFF))
        with capture_logs() as logs:
            assert await client.cmd(MAIL) == replies.SENDER_GONE
        assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0
        # A new transaction in the same session: refused as any sender off the ACL is.
        assert await client.cmd(f"MAIL FROM:<{STAFF}>") == replies.SENDER_NOT_HERE.format(ip="127.0.0.1")
        await asyncio.sleep(0.3)
        assert smsc.received == []


async def test_a_data_whose_write_failed_ends_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiosmtpd kept the envelope after the 451, and the client's next MAIL got "503 nested MAIL
    # command" until it reconnected.
    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("a fault in composing")

    async with session(tmp_path) as (_gw, smsc, client):
        with monkeypatch.context() as patched:
            patched.setattr(relay, "compose", broken)
            assert (await client.transaction()).startswith("354")
            assert await client.cmd(MAIL) == replies.TEMP_FAILURE
        assert (await client.transaction()).startswith("354")
        assert (await client.cmd(MAIL)).startswith("250 2.0.0 OK: queued as")
        await smsc.wait_for(1)
        assert smsc.received[0].text == "Hi: See you at 10"
