"""The simulator's warnings that a client can trigger once per PDU (unknown SMPP commands, CIMD2
operations it does not know, bad logins) go out at most once a second per kind, the rest counted
in `suppressed` and the last count said when the session ends: a client looping on one mistake
made one line per PDU inside the daemon's log (the simulator runs in the daemon). Real clients over
loopback TCP against the real servers."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from structlog.testing import capture_logs

from smsc.cimd2.packet import Op, P, Packet, encode
from tests.test_hostile_smsc import events, occurrences, settle
from tests.test_simulator import smpp_server
from tests.test_simulator_conformance import Cimd2Client, cimd2_server

FLOOD = 400


async def test_a_flood_of_unknown_smpp_commands_logs_a_few_lines_that_count_every_one(tmp_path: Path) -> None:
    async with smpp_server(tmp_path) as server:
        with capture_logs() as logs:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"".join(struct.pack(">IIII", 16, 0x0000_0777, 0, n + 1) for n in range(FLOOD)))
            answered = await reader.readexactly(16 * FLOOD)  # a generic_nack for each
            assert answered.count(struct.pack(">I", 0x8000_0000)) >= FLOOD
            writer.close()
            await writer.wait_closed()
            await settle(lambda: not server.sessions, 5)
        lines = events(logs, "sim.smpp.unknown_command")
        assert len(lines) <= 3, len(lines)
        assert occurrences(lines) == FLOOD


async def test_a_flood_of_unknown_cimd2_operations_and_bad_logins_is_counted_per_kind(tmp_path: Path) -> None:
    async with cimd2_server(tmp_path) as server:
        with capture_logs() as logs:
            client = await Cimd2Client.connect(server.port)
            for n in range(FLOOD):
                number = n % 256 // 2 * 2 + 1
                client.writer.write(encode(Packet.make(Op.CANCEL, number)))  # not one the simulator serves
                client.writer.write(
                    encode(Packet.make(Op.LOGIN, number, (P.USER_IDENTITY, "x"), (P.PASSWORD, "wrong")))
                )
            for _ in range(2 * FLOOD):
                await client.read()
            await client.close()
            await settle(lambda: not server.sessions, 5)
        unknown = events(logs, "sim.cimd2.unknown_operation")
        refused = events(logs, "sim.cimd2.login_refused")
        assert len(unknown) <= 3 and len(refused) <= 3, (len(unknown), len(refused))
        assert occurrences(unknown) == FLOOD and occurrences(refused) == FLOOD
