"""The simulator's SMPP and CIMD2 servers against a client that floods submits and never reads the
answers: the server stops reading once `WRITE_BUFFER_LIMIT` of answers waits, drops the client when
they do not drain within `drain_timeout` (one `sim.<protocol>.peer_not_reading` line), and keeps
serving a well-behaved client meanwhile. Its write buffer grew without bound (the simulator runs
inside the daemon). Real clients over loopback TCP; helpers from the tests of the same servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.simulator.serving import SessionBase
from smsc.smpp.codec import ENQUIRE_LINK, SUBMIT_SM, encode_sm
from smsc.smpp.codec import encode as encode_pdu
from tests.test_hostile_smsc import LIMIT, READ_SIZE, events, peak_write_buffer, settle, shrink_send_buffer
from tests.test_simulator import RawClient, raw_client, smpp_server
from tests.test_simulator_conformance import Cimd2Client, cimd2_server

ANSWERED = 3 << 19  # bytes of answers the flood asks for: past the limit and the kernel's buffers
DRAIN_TIMEOUT = 1.0


def smpp_submit(seq: int, text: str) -> bytes:
    return encode_sm(SUBMIT_SM, seq, source_addr="48100200300", destination_addr="48601123456",
                     source_addr_ton=1, dest_addr_ton=1, short_message=text.encode())  # fmt: skip


def cimd2_submit(number: int, text: str) -> bytes:
    return encode(Packet.make(Op.SUBMIT, number, (P.DESTINATION, "+48601123456"), (P.USER_DATA, text)))


@asynccontextmanager
async def not_reading(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection whose kernel receive buffer is small (no autotuning up to megabytes), so that what
    the client does not read stays in the server's own write buffer, which is what must be bounded."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


async def flood_and_watch(
    session: SessionBase,
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    flood: bytes,
    served: Callable[[], Awaitable[None]],
) -> tuple[int, list[dict[str, Any]]]:
    """Write `flood` from a client that has stopped reading; once the server holds more than the limit
    unread, `served()` (the well-behaved client) must still be answered. Returns the peak of the
    server's write buffer for the flooding client and the log, once the server has closed it."""
    reader, writer = client
    shrink_send_buffer(session.writer)
    writer.transport.pause_reading()
    peak = [0]
    sampler = asyncio.create_task(peak_write_buffer(session.writer, peak))
    with structlog.testing.capture_logs() as logs:
        writer.write(flood)
        await settle(lambda: peak[0] > LIMIT or session.closed.is_set(), 20)
        await served()  # while the flooding client stalls its session, or after it was dropped
        await settle(session.closed.is_set, 20)
    sampler.cancel()
    assert session.closed.is_set(), f"still connected with {peak[0]} bytes unread"
    writer.transport.resume_reading()  # the client finds the connection gone, its answers with it
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(10):
            while await reader.read(65536):
                pass
    return peak[0], logs


async def test_smpp_client_that_floods_submits_and_reads_nothing_is_dropped(tmp_path: Path) -> None:
    await smpp_flood_from_a_client_that_does_not_read(tmp_path)


def test_smpp_client_that_reads_nothing_is_dropped_under_uvloop(tmp_path: Path) -> None:
    # The daemon's loop, which the built-in simulator shares: its transports and drain() must bound
    # the buffer the same way.
    import uvloop

    uvloop.run(smpp_flood_from_a_client_that_does_not_read(tmp_path))


async def smpp_flood_from_a_client_that_does_not_read(tmp_path: Path) -> None:
    # A message id of 64 characters (the most SMPP allows) makes each submit_sm_resp 81 bytes.
    async with smpp_server(tmp_path, message_id_format=lambda mid: mid.rjust(64, "0")) as server:
        server.drain_timeout = DRAIN_TIMEOUT
        async with not_reading(server.port) as (reader, writer):
            assert await RawClient(reader, writer).bind() == 0
            [session] = server.sessions
            flood = b"".join(smpp_submit(seq, "flood") for seq in range(1, ANSWERED // 81))
            async with raw_client(server.port) as good:
                assert await good.bind() == 0
                peak, logs = await flood_and_watch(
                    session, (reader, writer), flood, lambda: submit(good, "still served")
                )
                await submit(good, "after the drop")
    assert peak <= LIMIT + READ_SIZE, peak
    [line] = events(logs, "sim.smpp.peer_not_reading")
    # Over the limit when the wait began; the kernel may take a few KB of it during the wait.
    assert line["system_id"] == "smsgw" and line["buffered"] > LIMIT and line["unsent"] > 0
    assert line["error"] == "the client is not reading our answers"
    assert [s.text for s in server.received[-2:]] == ["still served", "after the drop"]


async def test_stop_lets_go_of_a_client_that_reads_nothing(tmp_path: Path) -> None:
    # Answers under the limit, never read: the close waited for ever to flush them, and so did the
    # simulator's stop (and with it the daemon's).
    async with smpp_server(tmp_path) as server, not_reading(server.port) as (reader, writer):
        assert await RawClient(reader, writer).bind() == 0
        [session] = server.sessions
        shrink_send_buffer(session.writer)
        writer.transport.pause_reading()
        writer.write(b"".join(encode_pdu(ENQUIRE_LINK, seq) for seq in range(1, LIMIT // 2 // 16)))
        await settle(lambda: server.stats.commands["enquire_link"] == LIMIT // 2 // 16 - 1, 10)
        assert 0 < session.writer.transport.get_write_buffer_size() <= LIMIT
        server.goodbye_timeout = 0.5
        async with asyncio.timeout(5):
            await server.stop()
        assert session.closed.is_set() and session.writer.transport.is_closing()


async def submit(client: RawClient, text: str) -> None:
    client.writer.write(smpp_submit(7, text))
    name, status, seq, _pdu = await client.read()
    assert (name, status, seq) == ("submit_sm_resp", 0, 7)


async def test_cimd2_client_that_floods_submits_and_reads_nothing_is_dropped(tmp_path: Path) -> None:
    async with cimd2_server(tmp_path) as server:
        server.drain_timeout = DRAIN_TIMEOUT
        async with not_reading(server.port) as (reader, writer):
            flooder = Cimd2Client(reader, writer)
            await flooder.login()
            [session] = server.sessions
            good = await Cimd2Client.connect(server.port)
            await good.login()
            answer = len(encode(Packet.make(Op.SUBMIT_RESP, 1, (P.DESTINATION, "+48601123456"),
                                            (P.SCTS, "261201120000"))))  # fmt: skip
            flood = b"".join(cimd2_submit(n % 256 | 1, "flood") for n in range(ANSWERED // answer))

            async def served() -> None:
                good.writer.write(cimd2_submit(3, "still served"))
                resp = await good.read()
                assert (resp.op, resp.number, resp.get(P.ERROR_CODE)) == (Op.SUBMIT_RESP, 3, None)

            try:
                peak, logs = await flood_and_watch(session, (reader, writer), flood, served)
                await served()
            finally:
                await good.close()
    assert peak <= LIMIT + 2 * READ_SIZE, peak  # checked after each read of up to 64 KB of submits
    [line] = events(logs, "sim.cimd2.peer_not_reading")
    # Over the limit when the wait began; the kernel may take a few KB of it during the wait.
    assert line["system_id"] == "smsgw" and line["buffered"] > LIMIT and line["unsent"] > 0
    assert [s.text for s in server.received[-2:]] == ["still served"] * 2
