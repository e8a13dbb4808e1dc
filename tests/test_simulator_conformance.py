"""The simulator behaves as an operator's SMSC would towards clients nobody here wrote: SMPP receipt
requests and destination TON/NPI as SMPP 3.4 defines them, CIMD2 packet numbers that continue across
logins, a clean goodbye to bound clients on stop, and `smsgw simulator run` without a link."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import SimulatorSection, SmscSection
from smsc.base import LinkState, ReportStatus
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Cimd2Parser, Op, P, Packet, encode
from smsc.encoding import parse_udh
from smsc.simulator.cimd2_server import Cimd2Server, Cimd2Session, first_number
from smsc.simulator.core import MAX_RECORDS, SimulatorCore
from tests.fakes.events import EventRecorder
from tests.test_simulator import RawClient, raw_client, simulator, smpp_server

ROOT = Path(__file__).resolve().parents[1]


class Esme:
    """A raw SMPP client that keeps the receipts arriving between its submits' responses."""

    def __init__(self, c: RawClient) -> None:
        self.c = c
        self.receipts: list[tuple[str, str]] = []  # (message id, stat), acknowledged

    async def _read(self) -> tuple[str, int, Any]:
        name, status, seq, pdu = await self.c.read()
        if name == "deliver_sm":
            assert pdu.esm_class == 0x04
            self.c.send("deliver_sm_resp", seq=seq)
            text = pdu.short_message.decode()
            fields = dict(f.split(":", 1) for f in text.split(" ") if ":" in f)
            self.receipts.append((fields["id"], fields["stat"]))
        return name, status, pdu

    async def submit(self, dest: str, *, registered_delivery: int = 1, ton: int = 1, npi: int = 1) -> str:
        self.c.send("submit_sm", source_addr="48100200300", destination_addr=dest, short_message=b"x",
                    registered_delivery=registered_delivery, source_addr_ton=1, dest_addr_ton=ton,
                    dest_addr_npi=npi)  # fmt: skip
        while True:
            name, status, pdu = await self._read()
            if name == "submit_sm_resp":
                assert status == 0
                return str(pdu.message_id.decode())

    async def receipts_until(self, message_id: str, stat: str) -> list[tuple[str, str]]:
        """Every receipt read, up to (`message_id`, `stat`)."""
        while (message_id, stat) not in self.receipts:
            await self._read()
        return self.receipts


# --- SMPP registered_delivery -------------------------------------------------------------------


async def test_failure_only_receipt_request_gets_no_delivrd(tmp_path: Path) -> None:
    # registered_delivery 2 asks for failure receipts only: a delivered part gets none, a failed one
    # gets UNDELIV. A final-receipt request sent after both marks the end (reports go out in order).
    async with smpp_server(tmp_path) as server, raw_client(server.port) as c:
        assert await c.bind() == 0
        esme = Esme(c)
        delivered = await esme.submit("48601123456", registered_delivery=2)
        failed = await esme.submit("48601123413", registered_delivery=2)
        marker = await esme.submit("48601123457", registered_delivery=1)
        seen = await esme.receipts_until(marker, "DELIVRD")
        assert seen == [(failed, "UNDELIV"), (marker, "DELIVRD")]
        assert delivered not in {i for i, _ in seen}


async def test_intermediate_bit_adds_an_enroute_receipt_and_none_means_none(tmp_path: Path) -> None:
    # Bit 4 (0x10) asks for an intermediate notification before the final receipt; 0 asks for nothing.
    async with smpp_server(tmp_path) as server, raw_client(server.port) as c:
        assert await c.bind() == 0
        esme = Esme(c)
        silent = await esme.submit("48601123455", registered_delivery=0)
        both = await esme.submit("48601123456", registered_delivery=0x11)
        seen = await esme.receipts_until(both, "DELIVRD")
        assert seen == [(both, "ENROUTE"), (both, "DELIVRD")]
        assert silent not in {i for i, _ in seen}


# --- SMPP destination TON/NPI -------------------------------------------------------------------


async def test_destination_is_read_by_its_ton(tmp_path: Path) -> None:
    # National (TON 2) in the simulator's region, unknown TON with "00", international: all one E.164.
    async with smpp_server(tmp_path) as server, raw_client(server.port) as c:
        assert await c.bind() == 0
        esme = Esme(c)
        await esme.submit("601123490", ton=2)
        await esme.submit("0048601123492", ton=0)
        await esme.submit("48601123491", ton=1)
        await esme.submit("7155", ton=3)
        await esme.submit("601123493", ton=0, npi=9)  # a private numbering plan: not ours to read
        assert [s.destination for s in server.received] == [
            "+48601123490", "+48601123492", "+48601123491", "7155", "601123493"
        ]  # fmt: skip


# --- CIMD2 packet numbers -----------------------------------------------------------------------


class Cimd2Client:
    """A hand-driven CIMD2 client that answers every delivery and notes its packet number."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = Cimd2Parser()
        self.inbox: list[Packet] = []

    @classmethod
    async def connect(cls, port: int) -> Cimd2Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def read(self) -> Packet:
        async with asyncio.timeout(5):
            while not self.inbox:
                data = await self.reader.read(4096)
                assert data, "the SMSC closed the connection"
                self.inbox.extend(self.parser.feed(data))
        return self.inbox.pop(0)

    async def login(self) -> None:
        login = Packet.make(Op.LOGIN, 1, (P.USER_IDENTITY, "smsgw"), (P.PASSWORD, "secret"))
        self.writer.write(encode(login))
        answer = await self.read()
        assert (answer.op, answer.get(P.ERROR_CODE)) == (Op.LOGIN_RESP, None)

    async def take(self) -> Packet:
        packet = await self.read()
        self.writer.write(encode(Packet(packet.op + 50, packet.number)))
        return packet

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_cimd2_packet_numbers_continue_across_logins(tmp_path: Path) -> None:
    # Kannel keeps its receive counter across logins and drops a request numbered as the previous
    # one; so a new login of the same client continues the numbering instead of restarting at 000.
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), tmp_path / "sim.jsonl", first_id=0)
    server = Cimd2Server(core)
    await server.start()
    try:
        numbers = []
        for text in ("one", "two"):
            client = await Cimd2Client.connect(server.port)
            await client.login()
            await core.inject_mo("+48601123456", "+48100200300", text)
            numbers.append((await client.take()).number)
            await client.close()
        assert numbers[0] != numbers[1] and (numbers[0] + 2) % 256 == numbers[1]
    finally:
        await server.stop()
        await core.close()


async def test_our_cimd2_client_takes_reports_whether_numbers_restart_or_continue(tmp_path: Path) -> None:
    # Our link judges repeats per connection: an SMSC that restarts at 000 after a reconnect and one
    # that continues are both taken, and every report arrives once.
    async with simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        cfg = SmscSection(name="c", type="cimd2", port=sim.cimd2_port, system_id="smsgw",
                          reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)  # fmt: skip
        link, ev = Cimd2Link(cfg.driver_settings(), password="secret"), EventRecorder()
        await link.start(ev)
        try:
            for round_ in range(3):
                await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
                message_id = sim.core.on_submit(_sms(f"+4860112345{round_}")).message_id
                await sim.core.inject_report(message_id, ReportStatus.DELIVERED)
                await ev.wait_until(lambda n=round_ + 1: len(ev.reports) == n)  # type: ignore[misc]
                sessions = sim._cimd2.owner.sessions
                if round_ == 0:  # an SMSC that forgets: the next login restarts at 000
                    sim._cimd2.owner.numbers.clear()
                await asyncio.gather(*(s.close() for s in list(sessions)))
        finally:
            await link.stop()
        assert len(ev.reports) == 3


@asynccontextmanager
async def cimd2_server(tmp_path: Path) -> AsyncIterator[Cimd2Server]:
    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=0), tmp_path / "sim.jsonl", first_id=0)
    server = Cimd2Server(core)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await core.close()


@asynccontextmanager
async def logged_in(server: Cimd2Server) -> AsyncIterator[tuple[Cimd2Client, Cimd2Session]]:
    """A client logged in, and the server's session for it (there once the login is answered)."""
    client = await Cimd2Client.connect(server.port)
    try:
        await client.login()
        yield client, next(s for s in server.sessions if s.logged_in and not s.closed.is_set())
    finally:
        await client.close()


async def test_cimd2_long_mo_cut_by_a_drop_resumes_with_the_unacknowledged_part(tmp_path: Path) -> None:
    # Parts 1 and 2 of a 3-part MO are acknowledged, part 3 is not when the connection drops: the next
    # login gets part 3 alone with its reference and 060, only renumbered, as an SMSC resends what it
    # still holds. The whole text again under a new reference would leave the client parts 1-2 of a set
    # that never completes, mailed later as a second, partial MO.
    async with cimd2_server(tmp_path) as server:
        async with logged_in(server) as (client, session):
            await server.core.inject_mo("+48601123456", "+48100200300", "A" * 400)
            parts = [await client.take(), await client.take(), await client.read()]  # the third unanswered
        await asyncio.wait_for(session.closed.wait(), 5)
        concat = [parse_udh(bytes.fromhex(p.get(P.UDH) or "")) for p in parts]
        assert [(c.total, c.seq) for c in concat if c] == [(3, 1), (3, 2), (3, 3)]
        assert len({c.ref for c in concat if c}) == 1
        async with logged_in(server) as (client, _):
            again = await client.take()
            assert again.params == parts[2].params and again.number != parts[2].number
            await server.core.inject_mo("+48601123456", "+48100200300", "marker")
            assert (await client.take()).get(P.USER_DATA) == "marker"  # and nothing else was resent


async def test_cimd2_answer_and_goodbye_in_one_read_are_not_delivered_again(tmp_path: Path) -> None:
    # A client that answers the 20 and leaves at once: the 70 and the FIN come in one read, and the
    # session closes before its delivery loop resumes. The MO was acknowledged, so the next login must
    # not get it again (a second mail to the user).
    async with cimd2_server(tmp_path) as server:
        async with logged_in(server) as (client, session):
            await server.core.inject_mo("+48601123456", "+48100200300", "once")
            mo = await client.read()
            client.writer.write(encode(Packet(Op.DELIVER_RESP, mo.number)))
            client.writer.write_eof()
            await asyncio.wait_for(session.closed.wait(), 5)
        async with logged_in(server) as (client, _):
            await server.core.inject_mo("+48601123456", "+48100200300", "marker")
            assert (await client.take()).get(P.USER_DATA) == "marker"


async def test_what_the_cimd2_server_keeps_for_tests_is_bounded(tmp_path: Path) -> None:
    # The simulator runs inside the daemon for months: the parts and delivery answers it keeps stop at
    # MAX_RECORDS (the newest), as the core's records do; the total of parts still counts them all.
    n = MAX_RECORDS + 5
    async with cimd2_server(tmp_path) as server, logged_in(server) as (client, _):
        for i in range(n):
            submit = Packet.make(Op.SUBMIT, (2 * i + 3) % 256, (P.DESTINATION, "+48601123456"),
                                 (P.USER_DATA, f"sms {i}"), (P.STATUS_REPORT_REQUEST, 0))  # fmt: skip
            client.writer.write(encode(submit))
        assert {(await client.read()).op for _ in range(n)} == {Op.SUBMIT_RESP}
        for i in range(n + 1):
            await server.core.inject_mo("+48601123456", "+48100200300", f"mo {i}")
        for _ in range(n + 1):  # the last goes out only once the one before was answered and noted
            await client.take()
        assert len(server.received) == len(server.answers) == MAX_RECORDS
        assert [s.text for s in server.received[:1] + server.received[-1:]] == ["sms 5", f"sms {n - 1}"]
        assert server.received_total == n and set(server.answers) == {(Op.DELIVER, 0)}


def _sms(destination: str) -> Any:
    from smsc.simulator.core import SubmittedSms

    return SubmittedSms(protocol="cimd2", system_id="smsgw", source="+48100200300", destination=destination,
                        data_coding=0, udh=b"", text="x")  # fmt: skip


# --- stopping, and `smsgw simulator run` --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stop_says_goodbye_to_bound_clients(tmp_path: Path) -> None:
    # On stop an SMPP client is unbound (it answers unbind_resp) before the connection closes.
    async with smpp_server(tmp_path) as server:
        c_ctx = raw_client(server.port)
        c = await c_ctx.__aenter__()
        try:
            assert await c.bind() == 0
            stopping = asyncio.create_task(server.stop())
            name, _, seq, _ = await c.read()
            assert name == "unbind"
            c.send("unbind_resp", seq=seq)
            await asyncio.wait_for(stopping, 5)
            assert server.stats.unbind_answered == 1
        finally:
            await c_ctx.__aexit__(None, None, None)


async def test_simulator_run_needs_no_link_and_stops_cleanly_with_a_cimd2_client(tmp_path: Path) -> None:
    # `smsgw simulator run` with a config without [[smsc]] starts; SIGTERM with a CIMD2 client logged
    # in ends it with status 0 and no traceback or asyncio complaint ("Exception in callback ...
    # CancelledError", from a connection handler still running when the loop closed) in its output.
    smpp, cimd2, control = _free_port(), _free_port(), _free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "var"\n'
        f"[simulator]\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli.main", "-c", str(cfg), "simulator", "run",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        client = None
        async with asyncio.timeout(15):
            while client is None:
                assert proc.returncode is None, (await proc.communicate())[1].decode()
                try:
                    client = await Cimd2Client.connect(cimd2)
                except OSError:
                    await asyncio.sleep(0.05)
        await client.login()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
        await client.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = (out + err).decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "Exception in callback" not in text and "CancelledError" not in text


def test_a_started_simulator_never_numbers_its_first_request_254() -> None:
    # A client that has received nothing expects 000 and takes 254 as a repeat of the request
    # before it: Kannel answered the first delivery report and dropped it (one start in 128).
    starts = [first_number(datetime.fromtimestamp(1_796_000_000 + k / 10, UTC)) for k in range(1280)]
    assert 254 not in starts
    assert all(n % 2 == 0 and 0 <= n < 254 for n in starts)
    assert len(set(starts)) == 127  # still spread: a restarted simulator rarely repeats a number
