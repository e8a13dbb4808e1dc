"""A link pointed at a port that speaks something else says so, with the keys to change.

An SMPP link at a mail server's port reported "unframeable bytes from peer" with a hex head, and a
CIMD2 link at an SMPP port "login: closed by the SMSC": both sent the admin looking at the SMSC.
The links are built from `[[smsc]]` sections and connect over TCP to real listeners on 127.0.0.1: a
mail server's banner, a web server's answer, the SMPP fake SMSC for the CIMD2 link.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from smpplib import smpp as pdus
from structlog.testing import capture_logs

from gateway.config import SmscSection
from smsc.base import LinkState, SmscLink
from tests.fakes.cimd2 import RecordingEvents
from tests.fakes.smsc import HappySMSC

FAST = {"response_timeout_seconds": 2, "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2}
BANNER = b"220 gw.acme.example ESMTP Postfix (Debian/GNU)\r\n"


@asynccontextmanager
async def other_service(greeting: bytes = b"", answer: bytes = b"") -> AsyncIterator[int]:
    """A listener that is no SMSC: `greeting` at connect (a mail server's banner), `answer` to the
    first bytes read (a web server's 400); the connection then stays open until the client closes it."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(greeting)
            if answer and await reader.read(4096):
                writer.write(answer)
            await reader.read()  # until the link gives up
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def last_error(kind: str, port: int, name: str = "main") -> tuple[str, list[dict[str, Any]]]:
    """The link's last error once it has one, and what it logged meanwhile."""
    values = {"name": name, "type": kind, "port": port, "system_id": "smsgw", "password": "secret", **FAST}
    link: SmscLink = SmscSection.model_validate(values).driver()
    with capture_logs() as logs:
        await link.start(RecordingEvents())
        try:
            for _ in range(300):  # a hang guard, not a timing assertion
                if error := link.stats().last_error:
                    return error, logs
                await asyncio.sleep(0.05)
            raise AssertionError(f"no error on the link: {logs}")
        finally:
            await link.stop(drain=False)


def words(port: int, said: str, protocol: str = "SMPP", name: str = "main") -> str:
    return (
        f"the peer at 127.0.0.1:{port} does not speak {protocol} ({said}):"
        f' check [[smsc]] "{name}" host, port and type'
    )


async def test_an_smpp_link_at_a_mail_server_says_the_port_speaks_no_smpp() -> None:
    async with other_service(BANNER) as port:
        error, logs = await last_error("smpp", port)
    said = words(port, "it sent '220 gw.acme.example ESMTP Postfi\u2026'")
    assert error == said, error
    (garbage,) = [e for e in logs if e["event"] == "smpp.garbage"][:1]
    assert garbage["error"] == said


async def test_an_smpp_link_at_a_web_server_says_the_port_speaks_no_smpp() -> None:
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    async with other_service(answer=answer) as port:
        error, _ = await last_error("smpp", port)
    assert error == words(port, "it sent 'HTTP/1.1 400 Bad Request'"), error


async def test_a_cimd2_link_at_an_smpp_port_says_the_port_speaks_no_cimd2() -> None:
    async with HappySMSC() as smsc:  # an SMPP SMSC: our login is garbage to it, its generic_nack to us
        error, _ = await last_error("cimd2", smsc.port, name="orange")
    assert error == "login: " + words(smsc.port, "it sent 16 bytes, no CIMD2 packet", "CIMD2", "orange"), (
        error
    )


async def test_a_cimd2_link_at_a_mail_server_quotes_its_banner() -> None:
    async with other_service(BANNER, answer=b"500 5.5.2 Error: command not recognized\r\n") as port:
        error, _ = await last_error("cimd2", port)
    said = words(port, "it sent '220 gw.acme.example ESMTP Postfi\u2026'", "CIMD2")
    assert error == f"login: {said}", error


async def test_a_bad_length_from_an_smsc_mid_session_quotes_none_of_its_bytes() -> None:
    # An SMSC bug: a deliver_sm whose command_length is 40 short. The rest of it, the SMS's text and
    # a number, is the next "PDU": no other service, and not to be quoted in the status and the log.
    text = "Your PIN is 4829, ring me on +48601234567 please ok"
    async with HappySMSC() as smsc:
        values = {"name": "main", "type": "smpp", "port": smsc.port, "system_id": "smsgw", **FAST}
        link: SmscLink = SmscSection.model_validate(values | {"password": "secret"}).driver()
        with capture_logs() as logs:
            await link.start(RecordingEvents())
            try:
                for _ in range(300):  # hang guards, not timing assertions
                    if link.stats().state == LinkState.ACTIVE:
                        break
                    await asyncio.sleep(0.05)
                pdu = pdus.make_pdu(
                    "deliver_sm", client=None, sequence=77, service_type="", source_addr_ton=1,
                    source_addr_npi=1, source_addr="48601234567", dest_addr_ton=1, dest_addr_npi=1,
                    destination_addr="4812345", esm_class=0, data_coding=0, short_message=text.encode(),
                )  # fmt: skip
                data = bytearray(pdu.generate())
                struct.pack_into(">I", data, 0, len(data) - 40)
                smsc.send_raw(bytes(data))
                error = None
                for _ in range(300):
                    if error := link.stats().last_error:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await link.stop(drain=False)
    assert error == "unframeable bytes from peer", error
    (garbage,) = [e for e in logs if e["event"] == "smpp.garbage"]
    assert garbage["error"] == error
    assert "does not speak" not in repr(logs) and "ring me" not in repr(logs) and "601234567" not in error
    # Nor the SMS's bytes as hex: the log carries no message text in any form.
    assert garbage["head"] is None and b"ring me".hex() not in repr(logs)
