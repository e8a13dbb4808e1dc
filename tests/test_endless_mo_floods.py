"""An SMSC that floods MOs faster than the gateway takes them, for ever, and never answers our submit:
the pause its flood forces on the reader is credited to a response timer only up to a bound, then the
session ends as the SMSC's doing, blaming no submit. Credited without bound, the reader stood paused
almost always, every timer and keep-alive was pushed back for ever: the link stayed up, the submit
never timed out and its part never failed over to another link. Each test talks to an SMSC over
loopback TCP: SMPP a bare one written here, CIMD2 the scripted one."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest

from smsc import backpressure
from smsc.base import Ack, DeliveryReport, InboundSms, LinkState, Outcome
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import encode
from smsc.settings import LinkSettings
from smsc.smpp.link import SmppLink
from smsc.stalls import FLOODED
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.fakes.events import EventRecorder
from tests.test_answers_behind_mo_floods import deliver_sm, pdu, sms
from tests.test_cimd2_link import mo, section

# Response timeout 0.5 s: the credit runs out after 2.5 s of pause, well before this.
PATIENCE = 8.0


class SlowStore(EventRecorder):
    """A store that takes each MO in 50 ms: slower than any flood."""

    async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
        await asyncio.sleep(0.05)
        return Ack.OK

    async def on_report(self, link: str, report: DeliveryReport) -> Ack:
        await asyncio.sleep(0.05)
        return Ack.OK


async def _pump(writer: asyncio.StreamWriter, block: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(block)
            await writer.drain()


class EndlessSmpp:
    """Floods deliver_sm from the first bind on, for ever; answers binds and enquire_links, never a
    submit_sm."""

    def __init__(self) -> None:
        self.connections = self.submits = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        buf, pump = b"", None
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                buf += chunk
                while len(buf) >= 16 and len(buf) >= struct.unpack_from(">I", buf)[0]:
                    n, command_id, _status, seq = struct.unpack_from(">IIII", buf)
                    buf = buf[n:]
                    if command_id == 0x09:
                        writer.write(pdu(0x80000009, seq, b"x\0"))
                        if self.connections == 1:
                            block = b"".join(map(deliver_sm, range(500)))
                            pump = asyncio.ensure_future(_pump(writer, block))
                    elif command_id == 0x04:
                        self.submits += 1
                    elif command_id in (0x15, 0x06):
                        writer.write(pdu(0x80000000 | command_id, seq))
        if pump is not None:
            pump.cancel()
        writer.close()


async def test_an_smpp_flood_that_never_ends_ends_the_session_and_blames_no_submit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 16384)
    smsc = EndlessSmpp()
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = LinkSettings(
        name="endless",
        port=port,
        response_timeout_seconds=0.5,
        late_answer_grace_seconds=0.5,
        enquire_link_seconds=5.0,
        reconnect_min_seconds=0.05,
        reconnect_max_seconds=0.2,
    )
    link = SmppLink(cfg, password="pw")
    events = SlowStore()
    await link.start(events)
    try:
        await events.wait_until(lambda: link.state is LinkState.ACTIVE)
        conn = link._conn
        assert conn is not None
        await events.wait_until(lambda: conn.pause.paused)
        result = await asyncio.wait_for(link.submit(sms()), PATIENCE)
        assert (result.outcome, result.error) == (Outcome.TEMPORARY, FLOODED), result
        assert result.written and result.lost_behind is None
        assert smsc.submits == 1
        assert conn.reason == FLOODED
    finally:
        await link.stop(drain=False)
        server.close()
        await server.wait_closed()


async def test_a_cimd2_flood_that_never_ends_ends_the_session_and_blames_no_submit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 16384)
    async with ScriptedSmsc() as smsc:
        settings = {"response_timeout_seconds": 0.5, "late_answer_grace_seconds": 0.5,
                    "enquire_link_seconds": 5.0}  # fmt: skip
        link, events = Cimd2Link(section(smsc.port, **settings), password="pw"), SlowStore()
        await link.start(events)
        pump: asyncio.Future[None] | None = None
        try:
            peer: PeerConnection = await smsc.accept()
            await peer.login()
            await events.wait_until(lambda: link.state is LinkState.ACTIVE)
            block = b"".join(encode(mo(2 * (i % 128), text=f"mo {i}")) for i in range(500))
            pump = asyncio.ensure_future(_pump(peer.writer, block))
            conn = link._conn
            assert conn is not None
            await events.wait_until(lambda: conn.pause.paused)
            result = await asyncio.wait_for(link.submit(sms()), PATIENCE)
            # Its alive may have been the timer that ran out first, the submit then refused unsent.
            assert conn.reason == FLOODED, (result, conn.reason)
            assert result.outcome is Outcome.TEMPORARY and result.lost_behind is None, result
            assert result.unsent or FLOODED in (result.error or ""), result
        finally:
            if pump is not None:
                pump.cancel()
            await link.stop(drain=False)
