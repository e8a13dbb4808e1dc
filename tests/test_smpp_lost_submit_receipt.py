"""An SMPP submit the SMSC may have taken without its answer reaching us: its delivery receipt, read
after the rebind, settles the part, and the phone gets the SMS once. The daemon over SMPP to a
scripted SMSC on loopback TCP (no simulator drops a session after reading submits, nor writes the
receipts a test needs), real SQLite.

- The connection drops with two submits on the wire; the SMSC took both and sends their receipts on
  the next session. Each was sent again a second after the rebind, each receipt stored unmatched
  (`dlr.unmatched`), and both phones had the SMS twice.
- A receipt of another SMS to the phone (another text, another minute) settles nothing: the part
  goes again once the settle after the rebind is over, logged as a possible duplicate; the same with
  no receipt at all. Before, it went again at once, not held for a receipt that may still come.
- A submit left unanswered past its response timeout, then its session closed (an SMSC frozen with
  our submits in its socket): the receipt it sends when it wakes settles it. Its late answer died
  with the connection, and the part went again after the grace.
- Two SMS to one phone lost together, one receipt that could be either's: neither is settled.
"""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path
from typing import Any

import structlog

from gateway.config import Config
from smsc.smpp.codec import (
    DELIVER_SM,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    ShortMessage,
    decode_sm,
    encode_resp,
    encode_sm,
)
from tests.conftest import mail, running_gateway
from tests.test_answers_behind_mo_floods import pdu
from tests.test_late_answer import link_config, to, warnings

BIND_TRANSCEIVER, ENQUIRE_LINK = 0x09, 0x15
DELIVER_SM_RESP = 0x80000005
GRACE = 60.0  # seconds: far past the test, so that a re-send inside it is the fault


class Peer:
    """One connection to the scripted SMSC: the test reads our PDUs and writes its own."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def next(self, within: float = 20.0) -> tuple[int, int, bytes]:
        """Our next PDU but enquire_links (answered): (command_id, seq, raw). `within` is a hang guard."""
        while True:
            head = await asyncio.wait_for(self.reader.readexactly(16), within)
            length, command_id, _status, seq = struct.unpack(">IIII", head)
            raw = head + await self.reader.readexactly(length - 16)
            if command_id == ENQUIRE_LINK:
                self.writer.write(pdu(0x80000015, seq))
                continue
            return command_id, seq, raw

    async def bind(self) -> None:
        command_id, seq, _raw = await self.next()
        assert command_id == BIND_TRANSCEIVER
        self.writer.write(pdu(0x80000009, seq, b"smsc\0"))

    async def submit(self) -> tuple[int, ShortMessage]:
        command_id, seq, raw = await self.next()
        assert command_id == SUBMIT_SM, hex(command_id)
        sm = decode_sm(raw)
        assert isinstance(sm, ShortMessage)
        return seq, sm

    def receipt(self, seq: int, sm: ShortMessage, message_id: str, *, minute: float | None = None,
                text: str | None = None) -> None:  # fmt: skip
        """The receipt of `sm`, delivered, stamped `minute` (now), quoting `text` (its own)."""
        stamp = time.strftime("%y%m%d%H%M", time.gmtime(time.time() if minute is None else minute))
        quote = sm.short_message[:20].decode("latin-1") if text is None else text
        body = (f"id:{message_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} stat:DELIVRD"
                f" err:000 text:{quote}")  # fmt: skip
        self.writer.write(encode_sm(DELIVER_SM, seq, source_addr=sm.destination_addr, source_addr_ton=1,
                                    destination_addr="48100200300", esm_class=0x04,
                                    short_message=body.encode("latin-1")))  # fmt: skip

    def close(self) -> None:
        self.writer.transport.abort()


class ScriptedSmsc:
    """An SMPP SMSC on loopback whose connections the test drives (`accept`)."""

    def __init__(self) -> None:
        self.peers: asyncio.Queue[Peer] = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> ScriptedSmsc:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            await self.peers.put(Peer(reader, writer))

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()

    async def accept(self) -> Peer:
        peer = await asyncio.wait_for(self.peers.get(), 20)
        await peer.bind()
        return peer


def held(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dispatcher's word that it put a part back for its hold (`gateway.submits`)."""
    return [e for e in logs if e["event"] == "mt.resend_held"]


def config(tmp_path: Path, port: int, **smsc: Any) -> Config:
    smsc = {"late_answer_grace_seconds": GRACE, **smsc}
    return link_config(tmp_path, port, **smsc)


def parts(gw: Any) -> list[tuple[str, str | None, int]]:
    return list(gw.store.db.conn.execute("SELECT state, smsc_id, attempts FROM parts ORDER BY id"))


async def test_receipts_after_the_rebind_settle_the_submits_lost_with_the_connection(tmp_path: Path) -> None:
    async with ScriptedSmsc() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(config(tmp_path, smsc.port)) as gw:
                first = await smsc.accept()
                await gw.send(mail([to("601123456"), to("601654321")], "Taken, then the link dropped"))
                lost = [await first.submit(), await first.submit()]
                first.close()  # no submit_sm_resp: the SMSC took both all the same
                again = await smsc.accept()
                for n, (_seq, sm) in enumerate(lost):
                    again.receipt(700 + n, sm, f"lost-{n}")
                answered = [await again.next(), await again.next()]
                assert [c for c, _s, _r in answered] == [DELIVER_SM_RESP] * 2
                await gw.until(lambda: [p[0] for p in parts(gw)] == ["delivered", "delivered"])
                assert sorted(p[1:] for p in parts(gw)) == [("lost-0", 1), ("lost-1", 1)]
                [(unmatched,)] = gw.store.db.conn.execute("SELECT count(*) FROM dlrs WHERE part_id IS NULL")
                assert unmatched == 0
    assert not warnings(logs, "mt.possible_duplicate")
    assert len(warnings(logs, "smpp.lost_submit_receipt")) == 2


async def test_another_sms_receipt_settles_nothing_and_the_part_goes_again_after_the_settle(
    tmp_path: Path,
) -> None:
    async with ScriptedSmsc() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(config(tmp_path, smsc.port, lost_submit_settle_seconds=2)) as gw:
                first = await smsc.accept()
                await gw.send(mail(to("601123456"), "Lost with the connection"))
                _seq, sm = await first.submit()
                first.close()
                again = await smsc.accept()
                again.receipt(700, sm, "other-text", text="Another SMS entirely")
                again.receipt(701, sm, "other-minute", minute=time.time() - 600)
                assert [(await again.next())[0] for _ in range(2)] == [DELIVER_SM_RESP] * 2
                seq, resent = await again.submit()  # after the settle (2 s), in a hang guard of 20
                assert resent.short_message == sm.short_message
                again.writer.write(encode_resp(SUBMIT_SM_RESP, seq, 0, "resent-1"))
                await gw.until(lambda: [p[1:] for p in parts(gw)] == [("resent-1", 2)])
    assert held(logs)  # held for its receipt, not sent again at once
    [dup] = warnings(logs, "mt.possible_duplicate")
    assert dup["earlier"] == "main"
    assert not warnings(logs, "smpp.lost_submit_receipt")


async def test_without_a_receipt_the_lost_submit_goes_again_after_the_settle(tmp_path: Path) -> None:
    async with ScriptedSmsc() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(config(tmp_path, smsc.port, lost_submit_settle_seconds=1)) as gw:
                first = await smsc.accept()
                await gw.send(mail(to("601123456"), "First SMS"))
                _seq, sm = await first.submit()
                first.close()
                await gw.until(lambda: bool(warnings(logs, "mt.link_lost_on_the_wire")))
                await gw.send(mail(to("601123456"), "Second SMS"))
                again = await smsc.accept()
                seq, resent = await again.submit()  # its turn kept: before the phone's later SMS
                assert resent.short_message == sm.short_message
                again.writer.write(encode_resp(SUBMIT_SM_RESP, seq, 0, "resent-1"))
                seq, later = await again.submit()
                assert b"Second SMS" in later.short_message
                again.writer.write(encode_resp(SUBMIT_SM_RESP, seq, 0, "later-1"))
                await gw.until(lambda: [p[1:] for p in parts(gw)] == [("resent-1", 2), ("later-1", 1)])
    assert held(logs)
    [dup] = warnings(logs, "mt.possible_duplicate")
    assert dup["earlier"] == "main"


async def test_the_receipt_of_a_submit_unanswered_then_closed_on_settles_it(tmp_path: Path) -> None:
    """An SMSC frozen with our submit in its socket: the response timeout, our close after a window
    of submits unanswered (here one), and the receipt it sends once it wakes, on the next session."""
    async with ScriptedSmsc() as smsc:
        cfg = config(tmp_path, smsc.port, window=1, response_timeout_seconds=1)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                first = await smsc.accept()
                await gw.send(mail(to("601123456"), "Read by the SMSC after our close"))
                _seq, sm = await first.submit()
                await gw.until(lambda: bool(warnings(logs, "mt.unanswered")))
                again = await smsc.accept()  # we closed the first: no answer can come on it
                again.receipt(700, sm, "woke-1")
                assert (await again.next())[0] == DELIVER_SM_RESP
                await gw.until(lambda: [p[0] for p in parts(gw)] == ["delivered"])
                assert parts(gw) == [("delivered", "woke-1", 1)]
    assert not warnings(logs, "mt.possible_duplicate")


async def test_a_receipt_either_of_two_lost_sms_to_one_phone_may_be_settles_neither(tmp_path: Path) -> None:
    async with ScriptedSmsc() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(config(tmp_path, smsc.port, lost_submit_settle_seconds=1)) as gw:
                first = await smsc.accept()
                await gw.send(mail(to("601123456"), "Alert"))
                await gw.send(mail(to("601123456"), "Alert"))
                lost = [await first.submit(), await first.submit()]
                first.close()
                again = await smsc.accept()
                again.receipt(700, lost[0][1], "either-1")
                assert (await again.next())[0] == DELIVER_SM_RESP
                for n in range(2):
                    seq, _resent = await again.submit()
                    again.writer.write(encode_resp(SUBMIT_SM_RESP, seq, 0, f"resent-{n}"))
                await gw.until(lambda: [p[1] for p in parts(gw)] == ["resent-0", "resent-1"])
    assert warnings(logs, "smpp.lost_submit_receipt_ambiguous")
    assert not warnings(logs, "smpp.lost_submit_receipt")
    assert len(warnings(logs, "mt.possible_duplicate")) == 2
