"""An SMSC that pushes more MOs than the link takes at once, without waiting for their answers, and
answers our submit behind them: the answer must be read as it comes, not after the MOs. Read late, a
submit the SMSC had accepted was taken for unanswered and went to the phone twice, and on CIMD2 the
alive timed out and the session dropped with the MOs read but never acknowledged. Past the bytes a
link holds, the rest of the flood waits in TCP, and no response timer runs meanwhile. Each test talks
to an SMSC over loopback TCP: SMPP a bare one written here, CIMD2 the scripted one."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import structlog

from smsc import backpressure
from smsc.base import Ack, DeliveryReport, InboundSms, LinkState, OutboundSms, Outcome
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.settings import LinkSettings
from smsc.smpp.codec import DELIVER_SM, encode_sm
from smsc.smpp.link import SmppLink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.fakes.events import EventRecorder
from tests.test_cimd2_link import mo, section

FLOOD = 3000


def pdu(command_id: int, seq: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, seq) + body


def deliver_sm(i: int) -> bytes:
    return encode_sm(DELIVER_SM, 100000 + i, source_addr="48601000111", source_addr_ton=1,
                     destination_addr="48100200300", short_message=b"mo %d" % i)  # fmt: skip


class FloodingSmsc:
    """At its first bind writes `flood` deliver_sm at once (then its own unbind, if `unbind`); answers
    every submit_sm (unless `silent`) and enquire_link (not once it unbound) at once, behind whatever
    it wrote before."""

    def __init__(self, flood: int = FLOOD, *, unbind: bool = False, silent: bool = False) -> None:
        self.flood, self.unbind, self.silent = flood, unbind, silent
        self.port = 0
        self.connections = 0
        self.mo_answers = 0  # deliver_sm_resp read, with status 0
        self.submits = self.unbind_answers = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first, buf = self.connections == 1, b""
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                buf += chunk
                while len(buf) >= 16 and len(buf) >= struct.unpack_from(">I", buf)[0]:
                    n, command_id, status, seq = struct.unpack_from(">IIII", buf)
                    buf = buf[n:]
                    if command_id == 0x09:  # bind_transceiver
                        flood = b"".join(map(deliver_sm, range(self.flood))) if first else b""
                        unbind = pdu(0x06, 1) if first and self.unbind else b""
                        writer.write(pdu(0x80000009, seq, b"flood\0") + flood + unbind)
                    elif command_id == 0x04:  # submit_sm
                        self.submits += 1
                        if not self.silent:
                            writer.write(pdu(0x80000004, seq, b"abc123\0"))
                    elif command_id == 0x15 and not (first and self.unbind):  # enquire_link
                        writer.write(pdu(0x80000015, seq))  # none once it unbound
                    elif command_id == 0x06:  # unbind
                        writer.write(pdu(0x80000006, seq))
                    elif command_id == 0x80000005 and status == 0:
                        self.mo_answers += 1
                    elif command_id == 0x80000006:
                        self.unbind_answers += 1
        writer.close()


class GatedEvents(EventRecorder):
    """A store that commits nothing until `gate` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
        await self.gate.wait()
        return await super().on_deliver(link, sms)

    async def on_report(self, link: str, report: DeliveryReport) -> Ack:
        await self.gate.wait()
        return await super().on_report(link, report)


def sms(part_id: int = 1) -> OutboundSms:
    return OutboundSms(part_id=part_id, source="+48100200300", destination="+48601123456", data_coding=0,
                       payload=b"hi", text="hi")  # fmt: skip


@asynccontextmanager
async def smpp_flood(
    smsc: FloodingSmsc | None = None, **cfg: float
) -> AsyncIterator[tuple[SmppLink, GatedEvents, FloodingSmsc]]:
    smsc = smsc or FloodingSmsc()
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    smsc.port = server.sockets[0].getsockname()[1]
    settings = {"response_timeout_seconds": 5.0, "late_answer_grace_seconds": 5.0,
                "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2, **cfg}  # fmt: skip
    link = SmppLink(LinkSettings(name="flood", port=smsc.port, **settings), password="pw")
    events = GatedEvents()
    await link.start(events)
    try:
        await events.wait_until(lambda: link.state is LinkState.ACTIVE)
        yield link, events, smsc
    finally:
        events.gate.set()
        await link.stop(drain=False)
        server.close()
        await server.wait_closed()


async def test_an_smpp_submit_answered_behind_a_flood_of_mos_is_accepted_once() -> None:
    # The SMSC answered at once; the link read the answer 24 s later, behind 3,000 MOs.
    with structlog.testing.capture_logs() as logs:
        async with smpp_flood() as (link, events, smsc):
            result = await asyncio.wait_for(link.submit(sms()), 10)
            assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, "abc123"), result
            events.gate.set()
            await events.wait_until(lambda: len(events.delivered) == FLOOD, timeout=30)
            await asyncio.wait_for(_until(lambda: smsc.mo_answers == FLOOD), 30)
            assert link.state is LinkState.ACTIVE
    assert (smsc.connections, smsc.submits) == (1, 1)
    assert not [e for e in logs if e["event"] in ("smpp.response_timeout", "smpp.late_submit_resp")]
    assert [s.text for s in events.delivered] == [f"mo {i}" for i in range(FLOOD)]  # in order


async def test_past_its_bound_the_smpp_reader_pauses_and_no_response_timer_runs_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 4 kB held (some 60 MOs): the rest of the flood and the answers behind it wait in TCP while the
    # store is stuck for longer than the response timeout, and than the keep-alive and its timeout.
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 4096)
    with structlog.testing.capture_logs() as logs:
        async with smpp_flood(response_timeout_seconds=1.0, enquire_link_seconds=0.3) as (link, events, smsc):
            conn = link._conn
            assert conn is not None
            pending = asyncio.ensure_future(link.submit(sms()))
            await asyncio.sleep(2.5)
            assert not pending.done()
            assert conn.pause.paused and link._conn is conn and link.state is LinkState.ACTIVE
            assert len(conn.held) <= 4096 + 65536 and len(conn.tasks) == 100
            events.gate.set()
            result = await asyncio.wait_for(pending, 10)
            assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, "abc123"), result
            await asyncio.wait_for(_until(lambda: smsc.mo_answers == FLOOD), 30)
            assert link._conn is conn
    assert (smsc.connections, smsc.submits) == (1, 1)
    timeouts = ("smpp.response_timeout", "smpp.late_submit_resp", "smpp.link_down")
    assert not [e for e in logs if e["event"] in timeouts]
    assert [s.text for s in events.delivered] == [f"mo {i}" for i in range(FLOOD)]


async def test_an_unbind_held_behind_mos_ends_the_session_once_they_are_answered() -> None:
    # The SMSC's unbind came behind more MOs than the link takes at once, with a submit of ours that it
    # never answers. Served once the MOs were, it ended the session after the wait for answers that
    # follow an unbind, as one read at once does, not at the next bytes from the SMSC (which never
    # came): the submit is not blamed, nor taken for unanswered.
    smsc = FloodingSmsc(150, unbind=True, silent=True)
    with structlog.testing.capture_logs() as logs:
        async with smpp_flood(smsc) as (link, events, _smsc):
            pending = asyncio.ensure_future(link.submit(sms()))
            await asyncio.sleep(0.2)
            events.gate.set()
            result = await asyncio.wait_for(pending, 4)
            assert (result.outcome, result.error, result.lost_behind) == (
                Outcome.TEMPORARY,
                "unbind from SMSC",
                None,
            )
            await asyncio.wait_for(_until(lambda: smsc.connections == 2), 5)
    assert (smsc.mo_answers, smsc.unbind_answers) == (150, 1)
    assert [e["event"] for e in logs if e["event"] in ("smpp.unbind_by_smsc", "smpp.response_timeout")] == [
        "smpp.unbind_by_smsc"
    ]


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.02)


# --- CIMD2 ----------------------------------------------------------------------------------------


class Answering:
    """The scripted SMSC's side once logged in: every submit (03) and alive (40) of ours answered at
    once, behind whatever it wrote before; our answers to its deliveries (70) counted."""

    def __init__(self, peer: PeerConnection) -> None:
        self.peer = peer
        self.mo_answers = self.submits = self.alives = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(EOFError):
            while True:
                packet = await self.peer.next(within=60)
                if packet.op == Op.SUBMIT:
                    self.submits += 1
                    self.peer.send(Packet.make(Op.SUBMIT_RESP, packet.number, (P.DESTINATION, "+48601123456"),
                                               (P.SCTS, "261121045622")))  # fmt: skip
                elif packet.op == Op.ALIVE:
                    self.alives += 1
                    self.peer.send(Packet(Op.ALIVE_RESP, packet.number))
                elif packet.op == Op.DELIVER_RESP:
                    self.mo_answers += 1


@asynccontextmanager
async def cimd2_flood(**cfg: float) -> AsyncIterator[tuple[Cimd2Link, GatedEvents, Answering, ScriptedSmsc]]:
    async with ScriptedSmsc() as smsc:
        settings = {"response_timeout_seconds": 5.0, "late_answer_grace_seconds": 5.0, **cfg}
        link, events = Cimd2Link(section(smsc.port, **settings), password="pw"), GatedEvents()
        await link.start(events)
        try:
            peer = await smsc.accept()
            await peer.login()
            await events.wait_until(lambda: link.state is LinkState.ACTIVE)
            peer.send(b"".join(encode(mo(2 * (i % 128), text=f"mo {i}")) for i in range(FLOOD)))
            answering = Answering(peer)
            yield link, events, answering, smsc
        finally:
            events.gate.set()
            await link.stop(drain=False)


async def test_a_cimd2_submit_answered_behind_a_flood_of_mos_is_accepted_on_the_same_session() -> None:
    with structlog.testing.capture_logs() as logs:
        async with cimd2_flood() as (link, events, smsc, _server):
            conn = link._conn
            result = await asyncio.wait_for(link.submit(sms()), 10)
            assert result.outcome is Outcome.ACCEPTED, result
            assert result.message_id == "261121045622:48601123456"
            events.gate.set()
            await events.wait_until(lambda: len(events.delivered) == FLOOD, timeout=30)
            await asyncio.wait_for(_until(lambda: smsc.mo_answers == FLOOD), 30)
            assert link._conn is conn and link.state is LinkState.ACTIVE
    assert smsc.submits == 1
    assert not [e for e in logs if e["event"] in ("cimd2.submit_unanswered", "cimd2.disconnected")]
    assert [s.text for s in events.delivered] == [f"mo {i}" for i in range(FLOOD)]


async def test_past_its_bound_the_cimd2_reader_pauses_and_no_response_timer_runs_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 16 kB of packets in the inbox (some 25 MOs): the alive the idle link sends and the submit both
    # wait for answers stuck in TCP behind the flood, for longer than the response timeout.
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 16384)
    with structlog.testing.capture_logs() as logs:
        async with cimd2_flood(response_timeout_seconds=1.0, enquire_link_seconds=0.3) as (
            link,
            events,
            smsc,
            server,
        ):
            conn = link._conn
            assert conn is not None
            pending = asyncio.ensure_future(link.submit(sms()))
            await asyncio.sleep(2.5)
            assert not pending.done()
            assert conn.pause.paused and link._conn is conn and link.state is LinkState.ACTIVE
            events.gate.set()
            result = await asyncio.wait_for(pending, 10)
            assert result.outcome is Outcome.ACCEPTED, result
            await asyncio.wait_for(_until(lambda: smsc.mo_answers == FLOOD), 30)
            assert link._conn is conn
            with pytest.raises(TimeoutError):
                await server.accept(within=0.1)  # no second session
    assert smsc.submits == 1
    assert not [e for e in logs if e["event"] in ("cimd2.submit_unanswered", "cimd2.disconnected")]
    assert [s.text for s in events.delivered] == [f"mo {i}" for i in range(FLOOD)]
