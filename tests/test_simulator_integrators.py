"""The simulator as integrators use it: two clients on one login, restarts, split MOs, a full store.

Against the real simulator over TCP: smsgw's own SMPP link and a hand-driven SMPP client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import SimulatorSection
from smsc.base import ReportStatus
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.encoding import parse_udh
from smsc.simulator import held
from smsc.simulator.control import send_command
from smsc.simulator.core import SimulatorCore
from smsc.simulator.smpp_server import SmppServer
from tests.test_simulator import RawClient, bound_link, part, raw_client, simulator
from tests.test_simulator_conformance import Cimd2Client
from tests.test_simulator_pending_reports import until

SUBMIT = {"source_addr": "48100200300", "destination_addr": "48601123456", "short_message": b"x",
          "source_addr_ton": 1, "dest_addr_ton": 1}  # fmt: skip


async def next_deliver(c: RawClient) -> object:
    """The next deliver_sm the client gets, acknowledged."""
    while True:
        name, _, seq, pdu = await c.read()
        if name == "deliver_sm":
            c.send("deliver_sm_resp", seq)
            return pdu


async def test_a_receipt_goes_to_the_session_that_sent_the_sms_not_to_a_later_login(tmp_path: Path) -> None:
    # smsgw and Kannel bound with one login: the one that bound last took every receipt, and the
    # gateway never settled its SMS. MOs still go to the newest receiver, which the sentinel uses.
    async with simulator(tmp_path) as sim, bound_link(sim.smpp_port) as (link, ev):
        async with raw_client(sim.smpp_port) as other:
            assert await other.bind("bind_receiver") == 0
            result = await link.submit(part())
            await ev.wait_until(lambda: len(ev.reports) == 1)
            assert ev.reports[0].message_id == result.message_id
            command = {"op": "report", "message_id": result.message_id, "status": "failed"}
            assert (await send_command("127.0.0.1", sim.control_port, command))["ok"]
            await ev.wait_until(lambda: len(ev.reports) == 2)
            assert ev.reports[1].status is ReportStatus.FAILED
            mo = {"op": "mo", "source": "+48601222333", "destination": "+48100200300", "text": "sentinel"}
            assert (await send_command("127.0.0.1", sim.control_port, mo))["sessions"] == 1
            first = await next_deliver(other)
            assert first.esm_class == 0 and first.short_message == b"sentinel"  # no receipt before it


async def test_a_transmitters_receipt_goes_to_a_receiver_of_its_login(tmp_path: Path) -> None:
    async with simulator(tmp_path) as sim, raw_client(sim.smpp_port) as rx, raw_client(sim.smpp_port) as tx:
        assert await rx.bind("bind_receiver") == 0
        assert await tx.bind("bind_transmitter") == 0
        tx.send("submit_sm", registered_delivery=1, **SUBMIT)
        name, status, _, resp = await tx.read()
        assert (name, status) == ("submit_sm_resp", 0)
        receipt = await next_deliver(rx)
        assert receipt.esm_class == 0x04 and receipt.receipted_message_id == resp.message_id


async def submit_ids(port: int, n: int) -> list[str]:
    async with raw_client(port) as c:
        assert await c.bind() == 0
        for _ in range(n):
            c.send("submit_sm", registered_delivery=0, **SUBMIT)
        ids = []
        while len(ids) < n:
            name, status, _, resp = await c.read()
            if name == "submit_sm_resp":
                assert status == 0
                ids.append(resp.message_id.decode())
        return ids


async def test_a_restarted_simulator_hands_out_no_id_it_handed_out_before(tmp_path: Path) -> None:
    # Ids are the clock's ms + 1 a submit: a run faster than 1,000 submits a second runs ahead of the
    # clock, and the next start re-issued them (here the clock stands still, as it does for that run).
    frozen = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    log_path = tmp_path / "var" / "simulator.jsonl"
    ids: list[str] = []
    for _ in range(2):
        core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), log_path, now=lambda: frozen)
        await core.resume()
        server = SmppServer(core)
        await server.start()
        try:
            ids += await submit_ids(server.port, 5)
        finally:
            await server.stop()
            await core.close()
    assert len(set(ids)) == 10 and [int(i) for i in ids] == sorted(int(i) for i in ids)


async def test_an_mo_in_parts_has_one_coding_as_a_phone_chooses_it(tmp_path: Path) -> None:
    # Each piece was encoded alone: "Zażółć gęślą" in UCS-2, the ASCII rest in GSM, one MO.
    text = "Zażółć gęślą jaźń, and then more ascii text here"
    async with simulator(tmp_path) as sim, raw_client(sim.smpp_port) as c:
        assert await c.bind("bind_receiver") == 0
        mo = {"op": "mo", "source": "+48601222333", "destination": "+48100200300", "text": text, "parts": 3}
        assert (await send_command("127.0.0.1", sim.control_port, mo))["sessions"] == 1
        got = [await next_deliver(c) for _ in range(3)]
        assert [p.data_coding for p in got] == [8, 8, 8]
        pieces = {}
        for p in got:
            concat = parse_udh(p.short_message)
            assert concat is not None and concat.total == 3
            pieces[concat.seq] = p.short_message[6:].decode("utf-16-be")
        assert "".join(pieces[i] for i in (1, 2, 3)) == text


async def test_receipts_held_past_the_cap_never_push_out_a_held_mo(tmp_path: Path) -> None:
    # Nothing receiving: an MO is held, then a transmitter's receipts are held, more than the 10,000
    # one deque held of both: it dropped the MO, silently. Receipts now have a cap of their own.
    n = held.MAX_HELD_MOS + 5
    async with simulator(tmp_path) as sim:
        mo = {"op": "mo", "source": "+48601222333", "destination": "+48100200300", "text": "vote 1"}
        assert (await send_command("127.0.0.1", sim.control_port, mo))["sessions"] == 0
        async with raw_client(sim.smpp_port) as tx:
            assert await tx.bind("bind_transmitter") == 0
            for _ in range(n):
                tx.send("submit_sm", registered_delivery=1, **SUBMIT)
            answered = 0
            while answered < n:
                name, _, _, _ = await tx.read()
                answered += name == "submit_sm_resp"
            await until(lambda: not sim.core._tasks, 10, "every receipt held")
            async with raw_client(sim.smpp_port) as rx:
                assert await rx.bind("bind_receiver") == 0
                first = await next_deliver(rx)
                assert first.esm_class == 0 and first.short_message == b"vote 1"


def test_the_store_drops_the_oldest_of_a_kind_past_its_cap_and_says_so() -> None:
    store = held.Held(max_mos=2, max_reports=2)
    with capture_logs() as logs:
        store.add(("smpp", None, ("mo", "+48601222333", "+48100200300", "vote", None, False)))
        for mid in ("1", "2", "3", "4"):
            store.add(("smpp", "smsgw", ("report", mid, ReportStatus.DELIVERED)))
    assert [h[2][1] for h in store] == ["+48601222333", "3", "4"]
    assert store.dropped == {"mo": 0, "report": 2}
    dropped = [e for e in logs if e["event"] == "sim.held_dropped"]
    assert dropped[0]["item"] == "report" and dropped[0]["message_id"] == "1"


def submit_cimd2(client: Cimd2Client, number: int, destination: str, mask: int) -> None:
    client.writer.write(encode(Packet.make(Op.SUBMIT, number, (P.DESTINATION, destination),
                                           (P.USER_DATA, "x"), (P.STATUS_REPORT_REQUEST, mask))))  # fmt: skip


async def test_cimd2_056_asks_for_failures_only_or_successes_only(tmp_path: Path) -> None:
    # 056 is a mask: 4 (delivery failed) without 8 (successful) wants a report of a failure only, 8
    # alone of a success only, as SMPP's registered_delivery 2. Any bit used to ask for both.
    async with simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        client = await Cimd2Client.connect(sim.cimd2_port)
        try:
            await client.login()
            submit_cimd2(client, 3, "48601123413", 8)  # fails: not asked for
            submit_cimd2(client, 5, "48601123456", 4)  # delivered: not asked for
            submit_cimd2(client, 7, "48601123513", 4)  # fails: reported
            submit_cimd2(client, 9, "48601123556", 8)  # delivered: reported
            answers, reports = 0, []
            while answers < 4 or len(reports) < 2:
                packet = await client.read()
                if packet.op == Op.SUBMIT_RESP:
                    assert packet.get(P.ERROR_CODE) is None
                    answers += 1
                else:
                    client.writer.write(encode(Packet(packet.op + 50, packet.number)))
                    assert packet.op == Op.STATUS_REPORT
                    reports.append((packet.get(P.DESTINATION), packet.get(P.STATUS_CODE)))
            assert reports == [("+48601123513", "3"), ("+48601123556", "4")]
        finally:
            await client.close()


async def test_an_unknown_cimd2_operation_above_50_is_answered_with_a_general_error(tmp_path: Path) -> None:
    async with simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        client = await Cimd2Client.connect(sim.cimd2_port)
        try:
            await client.login()
            client.writer.write(encode(Packet(75, 5)))
            answer = await client.read()
            assert (answer.op, answer.number, answer.get(P.ERROR_CODE)) == (Op.GENERAL_ERROR, 5, "1")
        finally:
            await client.close()


async def test_a_submit_that_cannot_be_an_sms_is_refused_as_an_smsc_refuses_it(tmp_path: Path) -> None:
    # The simulator took them all: a client's encoder bug showed first on a real operator's link.
    cases = [
        ({"destination_addr": "4860\u00e9"}, 0x0B),  # not a number
        ({"esm_class": 0x40, "short_message": b"\x20abc"}, 0x01),  # header length past the end
        ({"esm_class": 0x40, "short_message": b""}, 0x01),  # UDHI with no header at all
        ({"data_coding": 8, "short_message": b"\x00a\x00"}, 0x01),  # UCS-2 cut inside a character
        ({"data_coding": 8, "short_message": b"\x00a"}, 0),
        ({"esm_class": 0x40, "short_message": bytes([5, 0, 3, 1, 2, 5]) + b"x"}, 0),  # the phone's business
    ]
    async with simulator(tmp_path) as sim, raw_client(sim.smpp_port) as c:
        assert await c.bind() == 0
        statuses = []
        for fields, _ in cases:
            c.send("submit_sm", registered_delivery=0, **{**SUBMIT, **fields})
            name, status, _, _ = await c.read()
            statuses.append((name, status))
        assert statuses == [("submit_sm_resp", want) for _, want in cases]
        assert len(sim.smpp.received) == 2
