"""The built-in simulator's SMPP server behaving as an SMSC does, over raw sockets: bind checks, requests
before bind and a receiver's submits refused, unknown commands nacked and garbage closing the
session, deliver_sm sent again and error answers retried with doubling pauses then dropped, reports
and long MOs kept for the next login, what it keeps for tests bounded, no MO to a transmitter. Split
from test_simulator.py by subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import itertools
import struct
from pathlib import Path

from smsc.encoding import concat_udh, parse_udh
from smsc.simulator.core import MAX_RECORDS
from tests.test_simulator import ME, PHONE, bound_link, raw_client, smpp_server

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
