"""The built-in simulator: its JSON log, suffix rules, control port, and SMSC-like SMPP behaviour."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
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
from smsc.simulator.core import MAX_RECORDS, SimulatorCore, SubmittedSms
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


# --- SMPP server behaviour ----------------------------------------------------------------------


async def test_bind_checks_system_id_and_password(tmp_path: Path) -> None:
    # Unknown system_id → 0x0F, wrong password → 0x0E, right login → 0, a second bind → 0x05.
    async with smpp_server(tmp_path) as server:
        async with raw_client(server.port) as c:
            assert await c.bind(system_id="someone") == 0x0F
            assert await c.bind(password="guess") == 0x0E
            assert await c.bind() == 0
            assert await c.bind() == 0x05


async def test_requests_before_bind_and_receiver_submits_are_refused(tmp_path: Path) -> None:
    # submit_sm before bind, and on a receiver bind, gets submit_sm_resp 0x04 ESME_RINVBNDSTS (SMPP
    # 3.4 answers a request with its own response; a generic_nack is for what cannot be parsed).
    async with smpp_server(tmp_path) as server, raw_client(server.port) as c:
        c.send("submit_sm", destination_addr="48601123456", short_message=b"x")
        assert (await c.read())[:2] == ("submit_sm_resp", 0x04)
        assert await c.bind("bind_receiver") == 0
        c.send("submit_sm", destination_addr="48601123456", short_message=b"x")
        assert (await c.read())[:2] == ("submit_sm_resp", 0x04)
        assert server.received == []


async def test_unknown_command_is_nacked_and_garbage_closes(tmp_path: Path) -> None:
    # An unknown command id gets generic_nack 0x03 and the session goes on; an unframeable
    # length gets generic_nack 0x02 and the connection is closed; the server serves the next client.
    async with smpp_server(tmp_path) as server:
        async with raw_client(server.port) as c:
            assert await c.bind() == 0
            c.writer.write(struct.pack(">IIII", 16, 0x00000777, 0, 5))
            assert (await c.read())[:3] == ("generic_nack", 0x03, 5)
            c.writer.write(struct.pack(">IIII", 16, 0x00000008, 0, 4))  # cancel_sm: not offered
            assert (await c.read())[:3] == ("generic_nack", 0x03, 4)
            c.send("enquire_link", seq=6)
            assert (await c.read())[:3] == ("enquire_link_resp", 0, 6)
            c.writer.write(b"\xff\xff\xff\xff garbage")
            assert (await c.read())[:2] == ("generic_nack", 0x02)
            assert await c.reader.read() == b""
        async with raw_client(server.port) as c:
            assert await c.bind() == 0


async def test_unanswered_deliver_sm_is_sent_again(tmp_path: Path) -> None:
    # A deliver_sm without a response is re-sent (new sequence, same content) until answered.
    async with smpp_server(tmp_path, resend_timeout=0.1) as server, raw_client(server.port) as c:
        assert await c.bind() == 0
        assert await server.core.inject_mo(PHONE, ME, "ping?") == 1
        name, _, first_seq, first = await c.read()
        name2, _, second_seq, second = await c.read()
        assert (name, name2) == ("deliver_sm", "deliver_sm") and first_seq != second_seq
        assert first.short_message == second.short_message == b"ping?"
        c.send("deliver_sm_resp", seq=second_seq)
        await server.wait_until(lambda: server.stats.deliver_responses == [("mo", 0)])
        assert next(iter(server.sessions)).pending_deliveries == 0


async def test_error_answers_are_retried_then_dropped(tmp_path: Path) -> None:
    # A client answering 0x64 gets the deliver_sm again, up to max_attempts, then the SMSC gives up.
    async with (
        smpp_server(tmp_path, retry_delay=0.01, max_attempts=2) as server,
        raw_client(server.port) as c,
    ):
        assert await c.bind() == 0
        await server.core.inject_mo(PHONE, ME, "again")
        for _ in range(2):
            _, _, seq, _ = await c.read()
            c.send("deliver_sm_resp", seq=seq, status=0x64)
        await server.wait_until(lambda: len(server.stats.deliver_responses) == 2)
        session = next(iter(server.sessions))
        await server.wait_until(lambda: session.pending_deliveries == 0)
        assert server.stats.deliver_responses == [("mo", 0x64), ("mo", 0x64)]


async def test_error_answers_are_retried_with_doubling_pauses(tmp_path: Path) -> None:
    # As an SMSC keeps offering what an ESME refused for now (a full disk answers 0x64): the pauses
    # double, and by default the simulator tries for minutes; at a fixed second apart it gave up
    # after five and the MO was lost while the gateway's disk was still full.
    from smsc.simulator.core import MAX_RETRY_DELAY, retry_pause
    from smsc.simulator.smpp_server import SmppServer

    most = MAX_RETRY_DELAY
    assert [retry_pause(1.0, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, most, most]
    default = SmppServer.__init__.__kwdefaults__ or {}
    assert sum(retry_pause(default["retry_delay"], n) for n in range(1, default["max_attempts"])) >= 180
    async with (
        smpp_server(tmp_path, retry_delay=0.05, max_attempts=4) as server,
        raw_client(server.port) as c,
    ):
        assert await c.bind() == 0
        await server.core.inject_mo(PHONE, ME, "again")
        loop = asyncio.get_running_loop()
        answered_at = []
        for status in (0x64, 0x64, 0x64, 0):
            _, _, seq, _ = await c.read()
            answered_at.append(loop.time())
            c.send("deliver_sm_resp", seq=seq, status=status)
        await server.wait_until(lambda: len(server.stats.deliver_responses) == 4)
        gaps = [b - a for a, b in itertools.pairwise(answered_at)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2, gaps
        assert server.stats.deliver_responses[-1] == ("mo", 0)


async def test_unacknowledged_report_is_kept_for_the_next_login(tmp_path: Path) -> None:
    # A client that vanishes before acknowledging a receipt gets it after it binds again.
    async with smpp_server(tmp_path) as server:
        async with raw_client(server.port) as c:
            assert await c.bind() == 0
            c.send("submit_sm", source_addr="48100200300", destination_addr="48601123456", short_message=b"x",
                   registered_delivery=1, source_addr_ton=1, dest_addr_ton=1)  # fmt: skip
            name, status, _, resp = await c.read()
            assert (name, status) == ("submit_sm_resp", 0)
            name, _, _, receipt = await c.read()
            assert name == "deliver_sm" and receipt.esm_class == 0x04
        async with bound_link(server.port) as (_, ev):
            await ev.wait_until(lambda: bool(ev.reports))
            assert ev.reports[0].message_id == resp.message_id.decode()
            assert ev.reports[0].destination == PHONE


async def test_long_mo_cut_by_a_drop_resumes_with_the_unacknowledged_part(tmp_path: Path) -> None:
    # Parts 1 and 2 of a 3-part MO are acknowledged, part 3 is not when the client vanishes: the next
    # bind gets part 3 alone, byte for byte (same reference), as an SMSC resends what it still holds.
    # The whole text again under a new reference would leave the client parts 1-2 of a set that never
    # completes, mailed later as a second, partial MO.
    async with smpp_server(tmp_path) as server:
        async with raw_client(server.port) as c:
            assert await c.bind() == 0
            session = next(iter(server.sessions))
            await server.core.inject_mo(PHONE, ME, "A" * 400)
            parts = [await c.read() for _ in range(3)]
            concat = [parse_udh(pdu.short_message) for _, _, _, pdu in parts]
            assert concat[0] is not None
            assert concat == [parse_udh(concat_udh(concat[0].ref, 3, i)) for i in (1, 2, 3)]
            for _, _, seq, _ in parts[:2]:
                c.send("deliver_sm_resp", seq=seq)
            await server.wait_until(lambda: len(server.stats.deliver_responses) == 2)
        await asyncio.wait_for(session.closed.wait(), 5)
        async with raw_client(server.port) as c:
            assert await c.bind() == 0
            name, _, seq, again = await c.read()
            assert name == "deliver_sm" and again.short_message == parts[2][3].short_message
            c.send("deliver_sm_resp", seq=seq)
            await server.core.inject_mo(PHONE, ME, "marker")
            name, _, _, after = await c.read()
            assert (name, after.short_message) == ("deliver_sm", b"marker")  # nothing else was resent


async def test_what_the_smpp_server_keeps_for_tests_is_bounded(tmp_path: Path) -> None:
    # The simulator runs inside the daemon for months: the parts, binds, deliver_sm answers and nacks
    # it keeps stop at MAX_RECORDS (the newest), as the core's records do; the totals still count.
    n = MAX_RECORDS + 5
    async with smpp_server(tmp_path) as server, raw_client(server.port) as c:
        for _ in range(n):
            c.send("bind_transceiver", system_id="smsgw", password="guess", system_type="")
        assert [(await c.read())[:2] for _ in range(n)] == [("bind_transceiver_resp", 0x0E)] * n
        assert await c.bind() == 0
        for i in range(n):
            c.send("submit_sm", source_addr="48100200300", destination_addr="48601123456",
                   short_message=f"sms {i}".encode(), source_addr_ton=1, dest_addr_ton=1)  # fmt: skip
        assert [(await c.read())[:2] for _ in range(n)] == [("submit_sm_resp", 0)] * n
        for i in range(n):
            await server.core.inject_mo(PHONE, ME, f"mo {i}")
        for _ in range(n):
            _, _, seq, _ = await c.read()
            c.send("deliver_sm_resp", seq=seq)
        for i in range(n):
            c.writer.write(struct.pack(">IIII", 16, 0x80000000, 0x08, 50_000 + i))  # generic_nack
        await server.wait_until(lambda: server.stats.commands["generic_nack"] == n)
        assert len(server.received) == len(server.stats.deliver_responses) == MAX_RECORDS
        assert server.received_total == server.stats.deliver_answered == n
        assert [s.text for s in server.received[:1] + server.received[-1:]] == ["sms 5", f"sms {n - 1}"]
        assert len(server.stats.binds) == len(server.stats.nacks) == MAX_RECORDS
        assert server.stats.binds[-1] == ("trx", "smsgw", 0)
        assert server.stats.nacks[-1] == (50_000 + n - 1, 0x08)


async def test_transmitter_bind_gets_no_mo(tmp_path: Path) -> None:
    # MOs go to sessions that can receive; a transmitter-only bind does not count.
    async with smpp_server(tmp_path) as server, raw_client(server.port) as c:
        assert await c.bind("bind_transmitter") == 0
        assert await server.core.inject_mo(PHONE, ME, "nobody") == 0
        c.send("unbind", seq=9)
        assert (await c.read())[:3] == ("unbind_resp", 0, 9)
