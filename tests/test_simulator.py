"""The built-in simulator: its JSON log, suffix rules and control port; and the helpers other test
modules import. Its SMPP server's SMSC-like behaviour has a module of its own
(test_simulator_smpp_server.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from smpplib import smpp as pdus

from gateway.config import SimulatorSection, SmscSection
from smsc.base import LinkState, OutboundSms, Outcome, ReportStatus
from smsc.encoding import concat_udh, parse_udh
from smsc.gsmalphabet import gsm_encode
from smsc.simulator import Simulator
from smsc.simulator.control import send_command
from smsc.simulator.core import SimulatorCore, SubmittedSms
from smsc.simulator.smpp_server import SmppServer, mo_parts
from smsc.smpp.link import SmppLink
from tests.fakes.smsc import EventRecorder

ME, PHONE = "+48100200300", "+48601123456"


def part(text: str = "hello", *, dest: str = PHONE, udh: bytes = b"") -> OutboundSms:
    payload = gsm_encode(text)
    return OutboundSms(
        part_id=1, source=ME, destination=dest, data_coding=0, payload=payload, text=text, udh=udh
    )


@asynccontextmanager
async def simulator(tmp_path: Path, **cfg: Any) -> AsyncIterator[Simulator]:
    settings: dict[str, Any] = {
        "smpp_port": 0,
        "cimd2_port": 0,
        "control_port": 0,
        "dlr_delay_seconds": 0,
        **cfg,
    }
    sim = Simulator(SimulatorSection(**settings), tmp_path / "var" / "simulator.jsonl")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@asynccontextmanager
async def bound_link(port: int) -> AsyncIterator[tuple[SmppLink, EventRecorder]]:
    cfg = SmscSection(name="sim", type="smpp", port=port, system_id="smsgw", reconnect_min_seconds=0.05,
                      reconnect_max_seconds=0.2)  # fmt: skip
    link, ev = SmppLink(cfg.driver_settings(), password="secret"), EventRecorder()
    await link.start(ev)
    try:
        await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
        yield link, ev
    finally:
        await link.stop()


class RawClient:
    """A hand-driven SMPP client, for server behaviour that SmppLink would hide."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sequence = 1000

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def send(self, name: str, seq: int | None = None, status: int = 0, **fields: Any) -> int:
        pdu = pdus.make_pdu(name, client=self, status=status, **fields)
        if seq is not None:
            pdu.sequence = seq
        self.writer.write(pdu.generate())
        return int(pdu.sequence)

    async def read(self) -> tuple[str, int, int, Any]:
        head = await asyncio.wait_for(self.reader.readexactly(16), 5)
        length, command_id, status, seq = struct.unpack(">IIII", head)
        raw = head + await self.reader.readexactly(length - 16)
        if command_id == 0x80000000:
            return "generic_nack", status, seq, None
        pdu = pdus.parse_pdu(raw, client=self, allow_unknown_opt_params=True)
        return str(pdu.command), status, seq, pdu

    async def bind(
        self, mode: str = "bind_transceiver", system_id: str = "smsgw", password: str = "secret"
    ) -> int:
        self.send(mode, system_id=system_id, password=password, system_type="")
        name, status, _, _ = await self.read()
        assert name == mode + "_resp"
        return status


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()
        await writer.wait_closed()


@asynccontextmanager
async def smpp_server(tmp_path: Path, **kw: Any) -> AsyncIterator[SmppServer]:
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), tmp_path / "sim.jsonl", first_id=0)
    server = SmppServer(core, **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await core.close()


# --- the log and the rules ----------------------------------------------------------------------


async def test_each_part_is_logged_as_one_json_line(tmp_path: Path) -> None:
    # One JSON object per received part, with the fields the README documents; the log dir is created.
    async with simulator(tmp_path) as sim, bound_link(sim.smpp_port) as (link, _):
        result = await link.submit(part("Part one ", udh=concat_udh(7, 2, 1)))
    lines = (tmp_path / "var" / "simulator.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert datetime.fromisoformat(record.pop("ts")).utcoffset() == UTC.utcoffset(None)
    assert record == {
        "protocol": "smpp", "system_id": "smsgw", "message_id": result.message_id, "source": "48100200300",
        "destination": PHONE, "data_coding": 0, "concat": {"ref": 7, "total": 2, "seq": 1},
        "text": "Part one ", "verdict": "delivered",
    }  # fmt: skip


async def test_fail_and_reject_suffixes(tmp_path: Path) -> None:
    # "…13" is accepted and reported UNDELIV; "…0000" is refused at submit with ESME_RINVDSTADR.
    async with simulator(tmp_path) as sim, bound_link(sim.smpp_port) as (link, ev):
        failed = await link.submit(part(dest="+48601123413"))
        refused = await link.submit(part(dest="+48601110000"))
        delivered = await link.submit(part())
        await ev.wait_until(lambda: len(ev.reports) == 2)
        assert failed.outcome is Outcome.ACCEPTED and refused.outcome is Outcome.REJECTED
        assert refused.error == "ESME_RINVDSTADR (0x0B)"
        by_id = {r.message_id: r.status for r in ev.reports}
        assert by_id == {failed.message_id: ReportStatus.FAILED, delivered.message_id: ReportStatus.DELIVERED}
        assert [(r["verdict"], r["message_id"]) for r in sim.core.records] == [
            ("failed", failed.message_id), ("rejected", ""), ("delivered", delivered.message_id)
        ]  # fmt: skip


def test_core_ids_increase_and_reports_follow_the_request(tmp_path: Path) -> None:
    # Ids are unique increasing decimals; no report is planned when none was requested.
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=1.5), tmp_path / "log.jsonl", first_id=99)
    sms = SubmittedSms("smpp", "smsgw", ME, PHONE, 0, b"", "x")
    first, second = (
        core.on_submit(sms),
        core.on_submit(SubmittedSms(**{**sms.__dict__, "want_report": False})),
    )
    assert (first.message_id, second.message_id) == ("100", "101")
    assert (first.report, first.report_delay, second.report) == (ReportStatus.DELIVERED, 1.5, None)
    assert core.check_login("smsgw", "secret") and not core.check_login("smsgw", "secreT")
    assert not core.check_login("other", "secret")


def test_ids_continue_from_the_clock_across_restarts(tmp_path: Path) -> None:
    # A restarted simulator must not hand out an id the gateway may still wait a report for.
    clock = [datetime(2030, 1, 1, tzinfo=UTC)]
    sms = SubmittedSms("smpp", "smsgw", ME, PHONE, 0, b"", "x")
    before = SimulatorCore(SimulatorSection(), tmp_path / "log.jsonl", now=lambda: clock[0]).on_submit(sms)
    clock[0] = datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    after = SimulatorCore(SimulatorSection(), tmp_path / "log.jsonl", now=lambda: clock[0]).on_submit(sms)
    assert int(after.message_id) > int(before.message_id)


def test_long_mo_is_split_with_one_reference() -> None:
    # An MO longer than one SMS becomes UDH parts with the same ref, in order.
    parts = mo_parts("word " * 70, ref=9)
    assert len(parts) == 3 and {esm for esm, _, _ in parts} == {0x40}
    assert [parse_udh(sm[:6]) for _, _, sm in parts] == [parse_udh(concat_udh(9, 3, i)) for i in (1, 2, 3)]
    assert mo_parts("", ref=1) == [(0, 0, b"")]


# --- control port -------------------------------------------------------------------------------


async def test_control_mo_reaches_a_bound_link(tmp_path: Path) -> None:
    # `smsgw simulator mo` → control port → deliver_sm → the link's on_deliver.
    async with simulator(tmp_path) as sim, bound_link(sim.smpp_port) as (_, ev):
        command = {"op": "mo", "source": PHONE, "destination": ME, "text": "hi", "protocol": None}
        assert await send_command("127.0.0.1", sim.control_port, command) == {"ok": True, "sessions": 1}
        await ev.wait_until(lambda: bool(ev.delivered))
        assert (ev.delivered[0].source, ev.delivered[0].destination, ev.delivered[0].text) == (
            PHONE,
            ME,
            "hi",
        )


async def test_control_report_overrides_the_automatic_one(tmp_path: Path) -> None:
    # An injected report for a known id reaches the link; an unknown id is an error.
    async with simulator(tmp_path) as sim, bound_link(sim.smpp_port) as (link, ev):
        result = await link.submit(part())
        await ev.wait_until(lambda: len(ev.reports) == 1)
        command = {"op": "report", "message_id": result.message_id, "status": "failed"}
        answer = await send_command("127.0.0.1", sim.control_port, command)
        # Sent (its "already" names the simulator's own report once the link's answer to it is in).
        assert answer["ok"] is True and answer["message_id"] == result.message_id
        await ev.wait_until(lambda: len(ev.reports) == 2)
        assert ev.reports[1].status is ReportStatus.FAILED and ev.reports[1].message_id == result.message_id
        unknown = await send_command("127.0.0.1", sim.control_port, {**command, "message_id": "nope"})
        assert unknown["ok"] is False and "unknown message_id" in unknown["error"]


@pytest.mark.parametrize(
    ("line", "error"),
    [(b"{not json\n", "not JSON"), (b"[1, 2]\n", "JSON object"), (b'{"op": "explode"}\n', "unknown op"),
     (b'{"op": "mo", "source": "+48601123456"}\n', "destination, text"),
     (b'{"op": "mo", "source": "1", "destination": "2", "text": "x", "protocol": "x25"}\n', "protocol"),
     (b'{"op": "report", "message_id": "1", "status": "lost"}\n', "status must be")],
)  # fmt: skip
async def test_control_errors_are_answered_and_the_server_stays(
    tmp_path: Path, line: bytes, error: str
) -> None:
    # Bad commands get {"ok": false, "error": ...} on the same connection, which keeps working.
    async with simulator(tmp_path) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.control_port)
        try:
            writer.write(line + b'{"op": "ping"}\n')
            first, second = json.loads(await reader.readline()), json.loads(await reader.readline())
        finally:
            writer.close()
            await writer.wait_closed()
        assert first["ok"] is False and error in first["error"]
        assert second == {"ok": True}


async def test_mo_without_a_session_is_held_until_a_login(tmp_path: Path) -> None:
    # With nobody bound the MO waits in the simulator, as an SMSC stores it, and goes on the next bind.
    async with simulator(tmp_path) as sim:
        command = {"op": "mo", "source": PHONE, "destination": ME, "text": "later"}
        assert await send_command("127.0.0.1", sim.control_port, command) == {"ok": True, "sessions": 0}
        async with bound_link(sim.smpp_port) as (_, ev):
            await ev.wait_until(lambda: bool(ev.delivered))
            assert ev.delivered[0].text == "later"


async def test_cimd2_listens_only_when_its_module_exists(tmp_path: Path) -> None:
    # The CIMD2 side is optional: without its module the simulator still runs SMPP and control.
    async with simulator(tmp_path) as sim:
        assert sim.smpp_port and sim.control_port
        assert (sim.cimd2_port is not None) == (
            importlib.util.find_spec("smsc.simulator.cimd2_server") is not None
        )
