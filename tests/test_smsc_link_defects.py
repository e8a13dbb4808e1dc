"""Regressions for operator-link defects: each test talks to a real peer over
loopback TCP where one can exist (fake SMPP SMSCs, a scripted CIMD2 SMSC, bare servers that misbehave
as real SMSCs do), and reads pure functions directly where none can."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.config import SmscSection
from smsc.base import LinkState, OutboundSms, Outcome, ReportStatus
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.gsmalphabet import gsm_encode
from smsc.pacing import reconnect_attempt
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.codec import DELIVER_SM, decode_sm, encode_sm
from smsc.smpp.link import SmppLink
from smsc.smpp.pdu import delivery_report, inbound_sms, normalise_message_id
from tests.fakes.cimd2 import ScriptedSmsc
from tests.fakes.smsc import EventRecorder, FakeSMSC, HappySMSC

ME, PHONE = "+48100200300", "+48601123456"
ESME_RINVBNDSTS = 0x04
BIND_TRANSCEIVER_RESP, UNBIND, ENQUIRE_LINK = 0x80000009, 0x00000006, 0x00000015


def sms(text: str = "hello", **kw: Any) -> OutboundSms:
    return OutboundSms(part_id=1, source=ME, destination=PHONE, data_coding=0, payload=gsm_encode(text),
                       text=text, **kw)  # fmt: skip


def settings(kind: str, port: int, **cfg: Any) -> Any:
    values = {"name": "op", "type": kind, "port": port, "system_id": "smsgw", "response_timeout_seconds": 5,
              "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2, **cfg}  # fmt: skip
    return SmscSection.model_validate(values).driver_settings()


@asynccontextmanager
async def smpp_link(port: int, **cfg: Any) -> AsyncIterator[tuple[SmppLink, EventRecorder]]:
    """A started SMPP link, bound before the test goes on."""
    link, ev = SmppLink(settings("smpp", port, **cfg), password="secret"), EventRecorder()
    await link.start(ev)
    try:
        await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
        yield link, ev
    finally:
        await link.stop(drain=False)


# --- 1. TON 1 numbers written with the international prefix "00" ----------------------------------


@pytest.mark.parametrize(
    ("ton", "address", "phone"),
    [(1, "0048601123456", "+48601123456"), (1, "48601123456", "+48601123456"),
     (1, "+48601123456", "+48601123456"), (0, "0048601123456", "0048601123456"),
     (2, "601123456", "601123456"), (1, "00", "+00")],
)  # fmt: skip
def test_ton1_sender_with_00_prefix_is_read_as_e164(ton: int, address: str, phone: str) -> None:
    # "+0048601123456" is no phone: its STOP was ignored and its answers missed the conversation.
    pdu = decode_sm(encode_sm(DELIVER_SM, 1, source_addr_ton=ton, source_addr_npi=1, source_addr=address,
                              destination_addr="48100200300", short_message=b"STOP"))  # fmt: skip
    assert inbound_sms(pdu, pdu.short_message, pdu.esm_class).source == phone
    receipt = decode_sm(encode_sm(DELIVER_SM, 2, esm_class=4, source_addr_ton=ton, source_addr=address,
                                  receipted_message_id="7", message_state=2))  # fmt: skip
    report = delivery_report(receipt, b"", "as_is")
    assert report is not None and report.destination == phone


# --- 2. ESME_RINVBNDSTS: the SMSC lost our session ------------------------------------------------


class LostBindSMSC(FakeSMSC):
    """Answers the first submit_sm with ESME_RINVBNDSTS, as an SMSC that dropped our session on its
    side (a restart of its front end) while the TCP connection stayed; serves normally after."""

    refusals = 1

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.refusals:
            self.refusals -= 1
            session.answer_submit(seq, None, status=ESME_RINVBNDSTS)
            return
        await super().on_submit(session, seq, sms)


async def test_incorrect_bind_status_retries_the_part_and_rebinds() -> None:
    # Classed REJECTED, every part bounced to its sender and the link never bound again.
    async with LostBindSMSC() as smsc, smpp_link(smsc.port) as (link, ev):
        refused = await link.submit(sms())
        assert refused.outcome is Outcome.TEMPORARY, refused
        assert "ESME_RINVBNDSTS" in (refused.error or "")
        await ev.wait_for(lambda: len(smsc.stats.binds) == 2 and link.state is LinkState.ACTIVE)
        assert LinkState.RECONNECTING in ev.states
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED


# --- 3. An SMSC that takes the bind and drops it at once ------------------------------------------


Step = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FlappingServer:
    """A bare TCP server that takes the login/bind (`protocol`'s first step), keeps the n-th connection
    (0-based) for `hold(n)` seconds, answering its enquire_link/alive (its third step), then ends the
    session (its second step) and closes; it records the loop time of every connection and every end."""

    def __init__(
        self, protocol: tuple[Step, Step, Step], hold: Callable[[int], float] = lambda _n: 0.0
    ) -> None:
        (self.login, self.goodbye, self.answer), self.hold = protocol, hold
        self.connected: list[float] = []
        self.closed: list[float] = []
        self.changed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FlappingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        n = len(self.connected)
        self.connected.append(loop.time())
        self.changed.set()
        try:
            await self.login(reader, writer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.answer(reader, writer), self.hold(n))
            await self.goodbye(reader, writer)
        finally:
            self.closed.append(loop.time())
            writer.close()

    async def wait_for(self, connections: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while len(self.connected) < connections:
                self.changed.clear()
                await self.changed.wait()


async def smpp_bind(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    length, _cid, _status, seq = struct.unpack(">IIII", await reader.readexactly(16))
    await reader.readexactly(length - 16)
    writer.write(struct.pack(">IIII", 18, BIND_TRANSCEIVER_RESP, 0, seq) + b"S\0")
    await writer.drain()


async def smpp_unbind(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(struct.pack(">IIII", 16, UNBIND, 0, 1))  # bind limit reached, account suspended, ...
    await writer.drain()


async def smpp_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        length, cid, _status, seq = struct.unpack(">IIII", await reader.readexactly(16))
        await reader.readexactly(length - 16)
        if cid == ENQUIRE_LINK:
            writer.write(struct.pack(">IIII", 16, ENQUIRE_LINK | 0x80000000, 0, seq))


async def cimd2_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        frame = await reader.readuntil(b"\x03")
        header = frame[frame.index(b"\x02") + 1 :]
        if int(header[:2]) == Op.ALIVE:
            writer.write(encode(Packet(Op.ALIVE_RESP, int(header[3:6]))))


async def cimd2_login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\x03")
    writer.write(encode(Packet(Op.LOGIN_RESP, 1)))
    await writer.drain()


async def cimd2_nothing(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    """CIMD2 has no logout from the SMSC's side: it just closes."""


PROTOCOLS = [
    ("smpp", (smpp_bind, smpp_unbind, smpp_answer)),
    ("cimd2", (cimd2_login, cimd2_nothing, cimd2_answer)),
]


def start_link(kind: str, port: int, **cfg: Any) -> SmppLink | Cimd2Link:
    driver = SmppLink if kind == "smpp" else Cimd2Link
    return driver(settings(kind, port, **cfg), password="secret")


@pytest.mark.parametrize(("kind", "protocol"), PROTOCOLS)
async def test_a_session_dropped_right_after_the_bind_grows_the_back_off(kind: str, protocol: Any) -> None:
    # Resetting the back-off on any successful bind re-bound such an SMSC every reconnect_min_seconds
    # for ever (~86,000 binds a day at the 1 s default); the pauses must double as for a refusal.
    async with FlappingServer(protocol) as smsc:
        link = start_link(kind, smsc.port, reconnect_min_seconds=0.1, reconnect_max_seconds=5)
        await link.start(EventRecorder())
        try:
            await smsc.wait_for(4)
        finally:
            await link.stop(drain=False)
        pauses = [b - a for a, b in zip(smsc.closed, smsc.connected[1:], strict=False)]
        assert pauses[2] >= 0.35, pauses  # 0.1, 0.2, 0.4: not 0.1 each time


@pytest.mark.parametrize(("kind", "protocol"), PROTOCOLS)
async def test_a_session_that_outlived_the_longest_pause_reconnects_at_once(kind: str, protocol: Any) -> None:
    # The other side of the same rule: a session that stayed up for reconnect_max_seconds, its requests
    # answered, proves the SMSC keeps us, so after its drop the link comes back after the shortest
    # pause, not the longest.
    # Wide margins (not a timing test): the pause after the long session is 0.05 s, and would be
    # 0.8 s had the short ones' growth gone on.
    async with FlappingServer(protocol, hold=lambda n: 1.2 if n == 4 else 0.0) as smsc:
        link = start_link(kind, smsc.port, reconnect_min_seconds=0.05, reconnect_max_seconds=1.0)
        await link.start(EventRecorder())
        try:
            await smsc.wait_for(6)
        finally:
            await link.stop(drain=False)
        pauses = [b - a for a, b in zip(smsc.closed, smsc.connected[1:], strict=False)]
        assert pauses[3] >= 0.35, pauses  # short sessions grew it: 0.05, 0.1, 0.2, 0.4
        assert pauses[4] < 0.6, pauses  # after the long one: back to 0.05, not on to 0.8


# --- 4. message_id_type and the receipted_message_id TLV ------------------------------------------


async def test_hex_to_dec_matches_a_receipt_whose_tlv_repeats_the_submit_resp_id() -> None:
    # The SMSC answers the submit in hex and writes its receipt's id: in decimal, while the TLV holds
    # the id of the submit_sm_resp (SMPP 3.4 5.3.2.12). The TLV wins, and left unconverted its key
    # 'a1b' never met the submit's '2587': the part stayed "submitted" and its failure was never bounced.
    async with HappySMSC(first_id=2586, message_id_format=lambda i: format(int(i), "04X")) as smsc:
        async with smpp_link(smsc.port, message_id_type="hex_to_dec") as (link, ev):
            result = await link.submit(sms(want_report=False))
            assert result.outcome is Outcome.ACCEPTED and result.message_id == "2587"
            text = b"id:2587 sub:001 dlvrd:000 submit date:2401011200 done date:2401011201 stat:UNDELIV"
            receipt = encode_sm(DELIVER_SM, 7, esm_class=4, source_addr_ton=1, source_addr="48601123456",
                                short_message=text, receipted_message_id="0A1B", message_state=5)  # fmt: skip
            smsc.send_raw(receipt)
            await ev.wait_until(lambda: bool(ev.reports))
            [report] = ev.reports
            assert (report.message_id, report.status) == (result.message_id, ReportStatus.FAILED)


@pytest.mark.parametrize(
    ("mode", "resp_id", "tlv", "text_id"),
    [("hex_to_dec", "0A1B", "0A1B", "2587"),  # TLV as the submit_sm_resp (the standard)
     ("hex_to_dec", "0A1B", "0A1B", None),  # TLV alone
     ("hex_to_dec", "0A1B", None, "2587"),  # text alone
     ("hex_to_dec", "0A1B", "2587", "2587"),  # TLV written like the text: Kannel's reading, still met
     ("dec_to_hex", "2587", "2587", "A1B"), ("dec_to_hex", "2587", "2587", None),
     ("as_is", "0A1B", "0A1B", "0a1b")],
)  # fmt: skip
def test_receipt_and_submit_ids_meet_in_every_form(mode: str, resp_id: str, tlv: str | None,
                                                   text_id: str | None) -> None:  # fmt: skip
    text = b"" if text_id is None else f"id:{text_id} stat:DELIVRD err:000".encode()
    fields: dict[str, Any] = {"receipted_message_id": tlv} if tlv is not None else {}
    pdu = decode_sm(encode_sm(DELIVER_SM, 3, esm_class=4, source_addr="48601123456", short_message=text,
                              message_state=2, **fields))  # fmt: skip
    report = delivery_report(pdu, pdu.short_message, mode)
    assert report is not None
    assert report.message_id == normalise_message_id(resp_id, mode, receipt=False)


# --- 5. CIMD2's 030 is the GSM 03.38 DCS: 1-3 are the GSM alphabet -------------------------------


@pytest.mark.parametrize("dcs", [1, 2, 3])
async def test_cimd2_packed_user_data_with_dcs_1_to_3_is_unpacked(dcs: int) -> None:
    # SMPP's own meaning of data_coding 1-3 (IA5, binary, Latin-1) was applied to CIMD2 too, where
    # the field is the DCS (protocols.md 1.10): a packed STOP came out as 'SêΓ\n' and was missed.
    async with ScriptedSmsc() as peer:
        link, ev = Cimd2Link(settings("cimd2", peer.port), password="pw"), EventRecorder()
        await link.start(ev)
        try:
            conn = await peer.accept()
            await conn.login()
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            packed_stop = (P.USER_DATA_BINARY, "53EA130A")
            conn.send(Packet.make(Op.DELIVER, 0, (P.DESTINATION, "7155"), (P.ORIGINATOR, PHONE),
                                  (P.SCTS, "261121045622"), (P.DCS, dcs), packed_stop))  # fmt: skip
            assert (await conn.next()).op == Op.DELIVER_RESP
            assert [m.text for m in ev.delivered] == ["STOP"]
        finally:
            await link.stop(drain=False)


def test_smpp_data_coding_3_is_still_latin1() -> None:
    # The SMPP table is kept where it belongs: data_coding 3 is Latin-1 octets, not GSM septets.
    pdu = decode_sm(encode_sm(DELIVER_SM, 1, source_addr_ton=1, source_addr="48601123456", data_coding=3,
                              short_message="café".encode("latin-1")))  # fmt: skip
    assert inbound_sms(pdu, pdu.short_message, pdu.esm_class).text == "café"


def test_a_session_of_half_a_minute_proves_the_smsc_keeps_us_whatever_the_longest_pause() -> None:
    # With the default 60 s longest pause, an SMSC ending every session after 40 s (an idle limit)
    # kept the link waiting the longest pause between its sessions: down most of the time.
    assert reconnect_attempt(5, 40.0, 60.0) == 1
    assert reconnect_attempt(5, 29.0, 60.0) == 6  # shorter: the pauses keep growing
    assert reconnect_attempt(5, None, 60.0) == 6  # never bound
    assert reconnect_attempt(5, 5.0, 5.0) == 1  # a longest pause under 30 s is proof enough
