"""An MO the client had not acknowledged when the simulator stopped is delivered after its restart.

A session that ends hands its unacknowledged MO parts back (`SimulatorCore.hold_part`): an SMPP
deliver_sm the client left unanswered, the CIMD2 20s still queued in the session. They were kept in
memory alone (only whole MOs went to the held file), so a stop of the daemon, whose built-in SMSC the
simulator is, lost them: an admin's "no MO lost over a restart" check blamed the gateway. The real
simulator over TCP, hand-driven SMPP and CIMD2 clients, a stop and a second start on the same log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import SimulatorSection
from smsc.cimd2.packet import Op, P
from smsc.simulator.cimd2_server import Cimd2Server
from smsc.simulator.core import SimulatorCore
from smsc.simulator.smpp_server import SmppServer
from tests.test_simulator import raw_client
from tests.test_simulator_conformance import Cimd2Client

PHONE, OURS = "+48601222333", "+48100200300"


async def test_an_smpp_deliver_sm_left_unanswered_at_a_stop_is_delivered_after_the_restart(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "var" / "simulator.jsonl"
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), log_path)
    await core.resume()
    server = SmppServer(core)
    server.goodbye_timeout = 0.2
    await server.start()
    try:
        async with raw_client(server.port) as c:
            assert await c.bind() == 0
            assert await core.inject_mo(PHONE, OURS, "Tak") == 1
            name, _, _, pdu = await c.read()
            assert name == "deliver_sm" and pdu.short_message == b"Tak"  # and never answered
            await server.stop()
    finally:
        await server.stop()
        await core.close()
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), log_path)
    await core.resume()
    server = SmppServer(core)
    await server.start()
    try:
        async with raw_client(server.port) as c:
            assert await c.bind() == 0
            name, _, seq, pdu = await c.read()
            assert name == "deliver_sm" and pdu.short_message == b"Tak"
            assert pdu.source_addr == PHONE.lstrip("+").encode()
            c.send("deliver_sm_resp", seq)
    finally:
        await server.stop()
        await core.close()


async def test_cimd2_mo_parts_still_queued_at_a_stop_are_delivered_after_the_restart(tmp_path: Path) -> None:
    log_path = tmp_path / "var" / "simulator.jsonl"
    text = "Dziekuje za wiadomosc, oddzwonie po spotkaniu. " * 5  # 2 parts, one 20 at a time
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), log_path)
    await core.resume()
    server = Cimd2Server(core)
    server.goodbye_timeout = 0.2
    await server.start()
    client = await Cimd2Client.connect(server.port)
    try:
        await client.login()
        assert await core.inject_mo(PHONE, OURS, text) == 1
        first = await client.read()  # not answered: the other parts wait in the session's queue
        assert first.op == Op.DELIVER
        await server.stop()
    finally:
        await client.close()
        await server.stop()
        await core.close()
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), log_path)
    await core.resume()
    server = Cimd2Server(core)
    await server.start()
    client = await Cimd2Client.connect(server.port)
    try:
        await client.login()
        got = [await client.take() for _ in range(2)]  # the one unanswered and the one queued
        assert all(p.op == Op.DELIVER for p in got)
        assert "".join(str(p.get(P.USER_DATA)) for p in got) == text
        await asyncio.sleep(0.1)
        assert not client.inbox
    finally:
        await client.close()
        await server.stop()
        await core.close()
