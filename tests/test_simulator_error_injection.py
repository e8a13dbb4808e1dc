"""The simulator's error injection (R-6.2: the gateway must take throttling and a full queue as
"slow down and retry"; integrators need an SMSC that does both) and receipts of a chosen final
state, against the real simulator over TCP and the CLI as a process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import SimulatorSection
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.simulator.cimd2_server import Cimd2Server
from smsc.simulator.control import send_command
from smsc.simulator.core import SimulatorCore
from smsc.simulator.smpp_server import SmppServer
from tests.conftest import config_text, free_port
from tests.test_process import smsgw
from tests.test_simulator import raw_client, simulator
from tests.test_simulator_conformance import Cimd2Client
from tests.test_simulator_integrators import SUBMIT, next_deliver

ESME_RMSGQFUL, ESME_RTHROTTLED = 0x14, 0x58


async def test_submits_past_the_cap_of_a_second_are_throttled_on_both_protocols(tmp_path: Path) -> None:
    # A login's submits in one second of the clock (held still here), SMPP and CIMD2 together.
    frozen = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    cfg = SimulatorSection(dlr_delay_seconds=0, max_submits_per_second=2)
    core = SimulatorCore(cfg, tmp_path / "sim.jsonl", now=lambda: frozen)
    smpp, cimd2 = SmppServer(core), Cimd2Server(core)
    await smpp.start()
    await cimd2.start()
    try:
        async with raw_client(smpp.port) as c:
            assert await c.bind() == 0
            statuses = []
            for _ in range(3):
                c.send("submit_sm", registered_delivery=0, **SUBMIT)
                name, status, _, _ = await c.read()
                statuses.append((name, status))
        assert statuses == [("submit_sm_resp", 0)] * 2 + [("submit_sm_resp", ESME_RTHROTTLED)]
        client = await Cimd2Client.connect(cimd2.port)
        try:
            await client.login()
            client.writer.write(encode(Packet.make(Op.SUBMIT, 3, (P.DESTINATION, "48601123456"),
                                                   (P.USER_DATA, "x"))))  # fmt: skip
            answer = await client.read()
            assert (answer.op, answer.get(P.ERROR_CODE)) == (Op.SUBMIT_RESP, "10")  # temporary congestion
        finally:
            await client.close()
        assert len(smpp.received) == 2 and cimd2.received == [] and len(core.records) == 2
        assert core.limits.refused == {"throttled": 2}
    finally:
        await cimd2.stop()
        await smpp.stop()
        await core.close()


async def test_a_submit_past_the_window_of_unanswered_ones_finds_the_queue_full(tmp_path: Path) -> None:
    async with simulator(tmp_path, max_unanswered_submits=2, response_delay_seconds=0.5) as sim:
        async with raw_client(sim.smpp_port) as c:
            assert await c.bind() == 0
            seqs = [c.send("submit_sm", registered_delivery=0, **SUBMIT) for _ in range(3)]
            answers = [(await c.read())[1:3] for _ in range(3)]
        # The third at once, refused; the two in the window after the delay, taken.
        assert answers == [(ESME_RMSGQFUL, seqs[2]), (0, seqs[0]), (0, seqs[1])]


async def test_a_chosen_final_state_and_error_reach_smpp_and_cimd2_clients(tmp_path: Path) -> None:
    async with simulator(tmp_path, dlr_delay_seconds=60) as sim, raw_client(sim.smpp_port) as c:
        assert await c.bind() == 0
        c.send("submit_sm", registered_delivery=1, **SUBMIT)
        _, _, _, resp = await c.read()
        command = {"op": "report", "message_id": resp.message_id.decode(), "status": "expired", "error": 27}
        assert (await send_command("127.0.0.1", sim.control_port, command))["ok"]
        receipt = await next_deliver(c)
        assert b"stat:EXPIRED err:027" in receipt.short_message and receipt.message_state == 3
        assert sim.cimd2_port is not None
        client = await Cimd2Client.connect(sim.cimd2_port)
        try:
            await client.login()
            submit = Packet.make(
                Op.SUBMIT,
                3,
                (P.DESTINATION, "48601123456"),
                (P.USER_DATA, "x"),
                (P.STATUS_REPORT_REQUEST, 14),
            )
            client.writer.write(encode(submit))
            assert (await client.read()).op == Op.SUBMIT_RESP
            mid = sim.core.last_message_id()
            command = {"op": "report", "message_id": mid, "status": "rejected", "error": 5}
            assert (await send_command("127.0.0.1", sim.control_port, command))["ok"]
            report = await client.take()
            assert (report.op, report.get(P.STATUS_CODE), report.get(P.STATUS_ERROR_CODE)) == (
                Op.STATUS_REPORT,
                "3",
                "5",
            )
        finally:
            await client.close()
        bad = await send_command("127.0.0.1", sim.control_port, {**command, "status": "delivered"})
        assert bad["ok"] is False and "failed report" in bad["error"]


async def test_send_report_from_the_cli_chooses_the_state_and_error(tmp_path: Path) -> None:
    async with simulator(tmp_path, dlr_delay_seconds=60) as sim, raw_client(sim.smpp_port) as c:
        config = tmp_path / "config.toml"
        section = f"[simulator]\nenabled = false\ncontrol_port = {sim.control_port}\n"
        text = config_text(tmp_path, smsc_port=free_port(), smtp_port=free_port())
        config.write_text(text.replace("[simulator]\nenabled = false\n", section))
        assert await c.bind() == 0
        c.send("submit_sm", registered_delivery=1, **SUBMIT)
        await c.read()
        done = await asyncio.to_thread(
            smsgw, config, "simulator", "send-report", "--last", "--status", "undeliverable", "--error", "9"
        )
        assert done.returncode == 0, done.stderr
        assert "report undeliverable (err 009) for message" in done.stdout
        receipt = await next_deliver(c)
        assert b"stat:UNDELIV err:009" in receipt.short_message
        usage = await asyncio.to_thread(smsgw, config, "simulator", "send-report", "--last", "--error", "9")
        assert usage.returncode == 2 and "--error goes with a failed --status" in usage.stderr
