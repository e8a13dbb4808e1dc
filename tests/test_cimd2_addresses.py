"""CIMD2 addresses as an SMSC writes them, over real TCP.

A sender that is no number ("ORANGE") comes in 027, the alphanumeric originating address, with no 023.
Our link read only 023: it answered such an MO with a plain 70 and dropped it, so the SMSC counted it
delivered and it was lost. The simulator wrote letters in 023 (Kannel warned of each), which hid that.
And the simulator took a submit's destination as "+" and its digits: Kannel's national "601123499"
became +601123499, a Malaysian number, where its SMPP server reads it in the region.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.config import SimulatorSection, parse_config
from smsc.cimd2.packet import Op, P, Packet
from smsc.simulator.cimd2_server import Cimd2Server
from smsc.simulator.core import SimulatorCore
from tests.conftest import Running, config_text, running_gateway
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_cimd2_link import scripted

STAMP = "261205101500"
FALLBACK = "ops@fallback.example"


def deliver(number: int, sender: tuple[int, str], text: str, destination: str = "+48100200300") -> Packet:
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, destination), sender, (P.SCTS, STAMP),
                       (P.USER_DATA, text))  # fmt: skip


@pytest.mark.parametrize(("wire", "sender"), [("ORANGE", "ORANGE"), ("Caf_e' 24", "Café 24")])
async def test_an_mo_from_an_alphanumeric_sender_in_027_is_handed_up(wire: str, sender: str) -> None:
    # 027 is in the CIMD character set, as 033: "_e'" is é.
    async with scripted() as (link, events, conn, _peer):
        conn.send(deliver(0, (P.ALPHA_ORIGINATOR, wire), "hi"))
        answer = await conn.next()
        assert (answer.op, answer.number, answer.params) == (Op.DELIVER_RESP, 0, [])
        await events.wait_for(lambda: len(events.delivered) == 1)
        [mo] = events.delivered
        assert (mo.source, mo.destination, mo.text) == (sender, "+48100200300", "hi")
        assert link.stats().extra["mo_rejected"] == "0"


@asynccontextmanager
async def gateway_on_cimd2(tmp_path: Path) -> AsyncIterator[tuple[Running, PeerConnection]]:
    """The daemon on a CIMD2 link to a scripted SMSC logged in, with a fallback address for MOs nobody
    can answer."""
    async with ScriptedSmsc() as peer:
        text = config_text(
            tmp_path, smsc_port=peer.port, extra=f'\n[replies]\nfallback_address = "{FALLBACK}"\n'
        )
        cfg = parse_config(text.replace('type = "smpp"', 'type = "cimd2"'), source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            conn = await peer.accept()
            await conn.login()
            yield gw, conn


async def test_the_daemon_records_an_alphanumeric_mo_as_from_no_phone(tmp_path: Path) -> None:
    # Recorded as the SMPP link records one from TON 5: its STOP puts nothing on the opt-out list, and
    # with nobody to answer it goes to the fallback address. A numeric STOP beside it is an opt-out.
    async with gateway_on_cimd2(tmp_path) as (gw, conn):
        conn.send(deliver(0, (P.ALPHA_ORIGINATOR, "ORANGE"), "STOP"))
        conn.send(deliver(2, (P.ORIGINATOR, "+48601999888"), "STOP"))
        # A sender ID of digits alone in 027 is no phone either: read as a national number, its STOP
        # opted a real subscriber (+48 601 123 456) out.
        conn.send(deliver(4, (P.ALPHA_ORIGINATOR, "601123456"), "STOP"))
        answers: list[tuple[int, int, list[tuple[int, str]]]] = []
        deadline = time.monotonic() + 20
        while len(answers) < 3 and time.monotonic() < deadline:
            packet = await conn.next(within=20)
            if packet.op == Op.ALIVE:
                conn.send(Packet(Op.ALIVE_RESP, packet.number))
            else:
                answers.append((packet.op, packet.number, packet.params))
        assert answers == [(Op.DELIVER_RESP, 0, []), (Op.DELIVER_RESP, 2, []), (Op.DELIVER_RESP, 4, [])]

        def rows() -> list[tuple[str, str, str]]:
            query = "SELECT source, text, state FROM mo ORDER BY id"
            return list(gw.store.db.conn.execute(query))

        await gw.until(lambda: all(state != "new" for *_, state in rows()) and len(rows()) == 3)
        assert rows() == [
            ("ORANGE", "STOP", "fallback"),
            ("+48601999888", "STOP", "optout"),
            ("601123456", "STOP", "fallback"),
        ]
        optouts = [r[0] for r in gw.store.db.conn.execute("SELECT number FROM optouts")]
        assert optouts == ["+48601999888"]


@asynccontextmanager
async def simulator_client(
    tmp_path: Path,
) -> AsyncIterator[tuple[SimulatorCore, Cimd2Server, PeerConnection]]:
    """The simulator's CIMD2 server and a raw client logged in to it."""
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), tmp_path / "sim.jsonl")
    server = Cimd2Server(core, retry_delay=0.02)
    await server.start()
    client = PeerConnection(*await asyncio.open_connection("127.0.0.1", server.port))
    try:
        client.send(Packet.make(Op.LOGIN, 1, (P.USER_IDENTITY, "smsgw"), (P.PASSWORD, "secret")))
        answer = await client.next()
        assert (answer.op, answer.params) == (Op.LOGIN_RESP, []), answer.describe()  # and registered
        yield core, server, client
    finally:
        client.close()
        await server.stop()
        await core.close()


@pytest.mark.parametrize(
    ("source", "wire"),
    [
        ("ORANGE", [(P.ALPHA_ORIGINATOR, "ORANGE")]),
        ("Café 24", [(P.ALPHA_ORIGINATOR, "Caf_e' 24")]),
        ("+48601999888", [(P.ORIGINATOR, "+48601999888")]),
        ("7355", [(P.ORIGINATOR, "7355")]),
    ],
)
async def test_the_simulator_sends_a_sender_that_is_no_number_in_027(
    tmp_path: Path, source: str, wire: list[tuple[int, str]]
) -> None:
    async with simulator_client(tmp_path) as (core, _server, client):
        assert await core.inject_mo(source, "+48100200300", "hi") == 1
        mo = await client.next()
        assert mo.op == Op.DELIVER
        assert [(c, v) for c, v in mo.params if c in (P.ORIGINATOR, P.ALPHA_ORIGINATOR)] == wire
        client.send(Packet(Op.DELIVER_RESP, mo.number))


@pytest.mark.parametrize(
    ("written", "recorded"),
    [
        ("601123499", "+48601123499"),  # national, in the simulator's region (PL)
        ("0048601123483", "+48601123483"),  # international with its "00"
        ("+48601123484", "+48601123484"),
        ("48601123485", "+48601123485"),  # no national number: the digits carry their country code
    ],
)
async def test_the_simulator_reads_a_submits_destination_as_an_smsc_does(
    tmp_path: Path, written: str, recorded: str
) -> None:
    async with simulator_client(tmp_path) as (_core, server, client):
        client.send(Packet.make(Op.SUBMIT, 3, (P.DESTINATION, written), (P.ORIGINATOR, "7355"),
                                (P.USER_DATA, "national")))  # fmt: skip
        answer = await client.next()
        assert (answer.op, answer.get(P.DESTINATION)) == (Op.SUBMIT_RESP, written), answer.describe()
        assert answer.get(P.ERROR_CODE) is None
        [sms] = server.received
        assert (sms.destination, sms.text) == (recorded, "national")
