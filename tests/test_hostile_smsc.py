"""Regressions against a hostile SMSC: a peer that floods and never reads our answers, a
stray bind_transceiver_resp, an MO whose UDH runs past its data, and floods of error PDUs. Every test
talks to the project's fake SMSCs over loopback TCP (or feeds the CIMD2 parser, whose unit it is)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

import structlog

from smsc.base import LinkState, Outcome
from smsc.cimd2.packet import Cimd2Parser, Op, P, Packet, encode
from smsc.smpp.codec import DELIVER_SM, ENQUIRE_LINK, encode_sm, generic_nack
from smsc.smpp.codec import encode as encode_pdu
from tests.fakes.cimd2 import PeerConnection
from tests.fakes.smsc import HappySMSC
from tests.test_cimd2_link import scripted
from tests.test_cimd2_link import sms as cimd2_sms
from tests.test_smpp_link import ME, PHONE, running_link, sms

LIMIT = 1 << 20  # the links' WRITE_BUFFER_LIMIT (SMPP and CIMD2): unread answers we keep at most
READ_SIZE = 65536  # the links' read size: answers to one read may go past the limit before the check
FLOOD_BYTES = 3 << 20  # past the limit once the kernel's buffers, shrunk below, are full
ESME_RSYSERR, ESME_RINVPASWD = 0x08, 0x0E
BIND_TRANSCEIVER_RESP = 0x80000009


def shrink_send_buffer(writer: asyncio.StreamWriter) -> None:
    """Keep the kernel's share of unread answers small (it autotunes up to 4 MB), so that a flood of a
    few MB reaches the transport's own buffer, which is what the link must bound."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)


async def peak_write_buffer(writer: asyncio.StreamWriter, peak: list[int]) -> None:
    """Sample the transport's write buffer at every turn of the loop (the reader's checks are per read)."""
    transport = writer.transport
    while not transport.is_closing():
        peak[0] = max(peak[0], transport.get_write_buffer_size())
        await asyncio.sleep(0)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def occurrences(lines: list[dict[str, Any]]) -> int:
    """How many times a throttled event happened: its lines (not the closing summaries) and those
    each line says were held back before it."""
    return sum(not e.get("summary") for e in lines) + sum(e["suppressed"] for e in lines)


async def settle(condition: Callable[[], bool], within: float) -> None:
    """Wait for `condition` at most `within` seconds; the test's asserts then say what did not happen."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while not condition():
                await asyncio.sleep(0.02)


# --- 1. A peer that floods requests and reads none of our answers ---------------------------------


async def test_smpp_peer_that_stops_reading_is_dropped_and_our_buffer_stays_bounded() -> None:
    # An enquire_link flood from a peer that stopped reading grew the daemon from 57 MB to 490 MB in
    # 15 s: every enquire_link_resp went to a transport buffer nobody drained.
    await smpp_flood_from_a_peer_that_does_not_read()


def test_smpp_peer_that_stops_reading_is_dropped_under_uvloop() -> None:
    # The daemon's loop: its transports and drain() must bound the buffer the same way.
    import uvloop

    uvloop.run(smpp_flood_from_a_peer_that_does_not_read())


async def smpp_flood_from_a_peer_that_does_not_read() -> None:
    async with (
        HappySMSC() as smsc,
        running_link(smsc.port, response_timeout_seconds=1) as (link, ev),
    ):
        conn = link._conn
        assert conn is not None
        shrink_send_buffer(conn.writer)
        peak = [0]
        sampler = asyncio.create_task(peak_write_buffer(conn.writer, peak))
        [session] = smsc.sessions
        session.writer.transport.pause_reading()
        with structlog.testing.capture_logs() as logs:
            session.write(b"".join(encode_pdu(ENQUIRE_LINK, n) for n in range(1, FLOOD_BYTES // 16)))
            await settle(lambda: ev.states.count(LinkState.ACTIVE) == 2, 15)
        sampler.cancel()
        assert peak[0] <= LIMIT + READ_SIZE, peak
        assert ev.states.count(LinkState.ACTIVE) == 2, ev.states
        [line] = events(logs, "smpp.peer_not_reading")
        assert line["error"] == "the SMSC is not reading our answers"
        assert conn.writer.transport.get_write_buffer_size() == 0  # aborted: the unsent answers freed
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED


async def test_cimd2_peer_that_stops_reading_is_dropped_and_our_buffer_stays_bounded() -> None:
    # The same with CIMD2 alives (40), each answered with a 90 nobody reads. The 'held' mark (and its
    # alive, unanswered here) comes after the test: it is the refused reading that drops the session.
    async with scripted(response_timeout_seconds=1, reconnect_max_seconds=60) as (link, ev, peer, smsc):
        conn = link._conn
        assert conn is not None
        shrink_send_buffer(conn.writer)
        peak = [0]
        sampler = asyncio.create_task(peak_write_buffer(conn.writer, peak))
        peer.writer.transport.pause_reading()
        alive = encode(Packet(Op.ALIVE, 2))
        with structlog.testing.capture_logs() as logs:
            peer.send(alive * (FLOOD_BYTES // len(alive)))
            again: PeerConnection | None = None
            with contextlib.suppress(TimeoutError):
                again = await smsc.accept(within=15)
                await again.login()
                await ev.wait_for(lambda: ev.states[-1] is LinkState.ACTIVE)
        sampler.cancel()
        assert peak[0] <= LIMIT + READ_SIZE, peak
        assert again is not None and LinkState.RECONNECTING in ev.states
        [line] = events(logs, "cimd2.peer_not_reading")
        assert line["error"] == "the SMSC is not reading our answers"
        assert conn.writer.transport.get_write_buffer_size() == 0


# --- 2. A stray bind_transceiver_resp with an error status ----------------------------------------


async def test_stray_error_bind_resp_after_the_bind_leaves_the_link_bound() -> None:
    # It set `bound` false: status still said active, every SMS was deferred and every MO got a
    # generic_nack ESME_RINVBNDSTS, with no log line.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        assert link._conn is not None and link._conn.bind_seq is not None
        with structlog.testing.capture_logs() as logs:
            smsc.send_raw(
                struct.pack(">IIII", 16, BIND_TRANSCEIVER_RESP, ESME_RINVPASWD, link._conn.bind_seq)
            )
            await smsc.inject_mo(PHONE, ME, "still there?")
            await settle(lambda: len(ev.delivered) == 1, 3)
        assert [m.text for m in ev.delivered] == ["still there?"]
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert link._conn is not None and link._conn.bound and ev.states.count(LinkState.ACTIVE) == 1
        [stray] = events(logs, "smpp.unexpected_response")
        assert stray["command"] == "bind_transceiver_resp" and "ESME_RINVPASWD" in stray["status"]


async def test_request_before_the_bind_is_answered_is_refused_and_logged() -> None:
    # The generic_nack ESME_RINVBNDSTS to it went out without a word in our log.
    nacks: list[tuple[int, int, int, int]] = []

    async def mo_before_bind_resp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length, _command, _status, seq = struct.unpack(">IIII", await reader.readexactly(16))
        await reader.readexactly(length - 16)
        writer.write(encode_sm(DELIVER_SM, 77, source_addr="48601123456", short_message=b"hi"))
        writer.write(struct.pack(">IIII", 21, BIND_TRANSCEIVER_RESP, 0, seq) + b"FAKE\0")
        nacks.append(struct.unpack(">IIII", await reader.readexactly(16)))
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mo_before_bind_resp, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with structlog.testing.capture_logs() as logs:
            async with running_link(port):
                await settle(lambda: bool(nacks), 3)
        assert nacks == [(16, 0x80000000, 0x04, 77)]  # generic_nack ESME_RINVBNDSTS
        [line] = events(logs, "smpp.refused_not_bound")
        assert line["seq"] == 77 and line["command"] == "deliver_sm"


# --- 3. An MO whose UDH length runs past its data -------------------------------------------------


async def test_mo_whose_udh_runs_past_the_data_keeps_its_text_and_is_logged() -> None:
    # The whole text was lost ("(the SMS was empty)" in the mail) and nothing was logged.
    data = b"\x09STOP"  # UDHI set, but a 9-octet UDH cannot fit in 5 octets: no UDH at all
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        with structlog.testing.capture_logs() as logs:
            mo = encode_sm(DELIVER_SM, 91, esm_class=0x40, source_addr="48601123456", source_addr_ton=1,
                           destination_addr="48100200300", short_message=data)  # fmt: skip
            smsc.send_raw(mo)
            await ev.wait_until(lambda: len(ev.delivered) == 1)
        assert ev.delivered[0].text == "ÇSTOP"  # 0x09 is Ç in the GSM alphabet
        assert ev.delivered[0].concat is None
        [line] = events(logs, "smpp.bad_udh")
        assert line["udh"] == data[:3].hex() and line["length"] == len(data) and line["link"] == link.name


# --- 4. Floods of error PDUs: one line per kind per second, then the count -------------------------


async def test_generic_nack_flood_is_logged_a_few_lines_with_the_count() -> None:
    # 200,000 generic_nacks made 200,000 warning lines (30 MB of log).
    flood = 2000
    async with HappySMSC() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_link(smsc.port) as (link, _ev):
                smsc.send_raw(b"".join(generic_nack(50_000 + n, ESME_RSYSERR) for n in range(flood)))
                # Its answer comes after the flood on the same stream: the flood was read by then.
                assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
                during = len(events(logs, "smpp.generic_nack"))
        assert during <= 3, during
        assert occurrences(events(logs, "smpp.generic_nack")) == flood  # the close said the rest


async def test_cimd2_stray_nack_flood_is_throttled_per_kind() -> None:
    # 100,000 "99:" NACKs made 100,000 cimd2.stray_nack lines; a flood of one kind must not hide another.
    flood = 2000
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (link, _ev, peer, _smsc):
            peer.send(b"".join(encode(Packet(Op.NACK, 2 * (n % 100))) for n in range(flood)))
            peer.send(Packet(Op.SUBMIT_RESP, 201))  # nothing of ours has 201 outstanding
            pending = asyncio.create_task(link.submit(cimd2_sms()))
            submit = await peer.next()
            peer.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, "+48601123456"),
                                  (P.SCTS, "261121045622")))  # fmt: skip
            assert (await pending).outcome is Outcome.ACCEPTED
            during = len(events(logs, "cimd2.stray_nack"))
            assert len(events(logs, "cimd2.unexpected_response")) == 1
    assert during <= 3, during
    assert occurrences(events(logs, "cimd2.stray_nack")) == flood


# --- 5. The CIMD2 parser: each kind of trouble throttled on its own --------------------------------


def test_parser_logs_a_dropped_frame_right_after_a_checksum_warning() -> None:
    # One throttle for all kinds: a checksum warning hid the "STX before ETX" of the next frame.
    parser = Cimd2Parser()
    bad_checksum = b"\x0253:003\t021:+48601\t060:261121045622\t00\x03"
    with structlog.testing.capture_logs() as logs:
        parser.feed(bad_checksum * 50)
        parser.feed(b"\x0240:005\t\x02" + encode(Packet(Op.ALIVE, 7)))
    assert [e["reason"] for e in events(logs, "cimd2.garbage")] == ["STX before ETX"]
    assert len(events(logs, "cimd2.checksum_mismatch")) == 1 and parser.checksum_errors == 50
    with structlog.testing.capture_logs() as logs:
        parser.flush_warnings()  # the connection ends: the count held back is said
    [summary] = events(logs, "cimd2.checksum_mismatch")
    assert summary["suppressed"] == 49 and summary["summary"] is True


# --- Also: a CIMD2 write after the peer reset, under uvloop ---------------------------------------


def test_cimd2_write_after_the_peer_reset_is_a_lost_link_under_uvloop() -> None:
    # As on SMPP (commit c3bf52a), where uvloop raised on a write to a transport the reset closed and
    # the part went on hold: on CIMD2 the write is a lost link, TEMPORARY, and the link logs in again.
    import uvloop

    async def scenario() -> None:
        async with scripted() as (link, ev, _peer, smsc):
            assert link._conn is not None
            link._conn.writer.transport.abort()  # the reset
            await asyncio.sleep(0)  # the transport is closed; the reader has not seen it yet
            assert (await link.submit(cimd2_sms())).outcome is Outcome.TEMPORARY
            again = await smsc.accept()
            await again.login()
            await ev.wait_for(lambda: ev.states[-1] is LinkState.ACTIVE)

    uvloop.run(scenario())
