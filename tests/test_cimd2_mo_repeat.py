"""An MO the SMSC sends again out of turn is still the same SMS: a CIMD2 SMSC delivered a vote under
packet 004, another MO under 002, then the vote again under 004 with the same 060 (its stamp) and
text, and the gateway mailed and charged it twice. Only the packet just before counts as a
retransmission on the link, and the store let the link's "same connection, moments later, so a new
SMS" mark win over the stamp. The stamp names the SMS (`gateway.store.redelivery`); the same text with
another stamp is a new SMS the phone paid for. Against the real daemon and a scripted SMSC over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from gateway.config import parse_config
from smsc.cimd2.packet import Op, P, Packet, encode
from tests.conftest import Running, Sink, config_text, free_port, running_gateway, smtp_sink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_mo_redelivery import (
    CLIENT,
    PHONE,
    PREMIUM,
    acks_recorded,
    charges,
    confirmed_kp123,
    first_lines,
)

OTHER = "+48601999888"
STAMP, LATER = "261203120000", "261203120500"


def deliver(number: int, source: str, text: str, stamp: str) -> Packet:
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, "7355"), (P.ORIGINATOR, source),
                       (P.SCTS, stamp), (P.USER_DATA, text))  # fmt: skip


class Acks:
    """Reads the client's side of `conn` until the test ends: answers its alives (which confirm its
    70s) and keeps the number of each delivery acknowledgement (70)."""

    def __init__(self, conn: PeerConnection) -> None:
        self.conn = conn
        self.numbers: list[int] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            packet = await self.conn.next(within=60)
            if packet.op == Op.ALIVE:
                self.conn.send(Packet(Op.ALIVE_RESP, packet.number))
            elif packet.op == Op.DELIVER_RESP:
                self.acknowledged(packet)
                self.numbers.append(packet.number)

    def acknowledged(self, packet: Packet) -> None:
        """The SMSC reading a 70: it takes it (a test's SMSC may refuse it)."""
        assert packet.params == [], packet.describe()

    async def stop(self) -> None:
        """Nothing answers the alives from now: the SMSC is not known to have read a later 70."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def answered(conn: PeerConnection, count: int) -> None:
    """Read `conn` until the gateway sent `count` delivery acknowledgements (70s), answering nothing."""
    seen = 0
    while seen < count:
        seen += (await conn.next()).op == Op.DELIVER_RESP


async def logged_in_again(smsc: ScriptedSmsc, conn: PeerConnection) -> tuple[PeerConnection, Acks]:
    """The SMSC closes `conn` (it restarts, or the line flaps) and the gateway's next connection logs in."""
    conn.close()
    again = await smsc.accept(within=30)
    await again.login()
    return again, Acks(again)


@asynccontextmanager
async def premium_cimd2(
    tmp_path: Path, ahead: list[float], smsc: ScriptedSmsc | None = None
) -> AsyncIterator[tuple[Running, PeerConnection, Acks, Sink]]:
    """The gateway on a CIMD2 link to a scripted SMSC (`smsc`, for a test that takes its next
    connection), with acme's confirmed premium service KP123 on 7355, its clock `ahead[0]` seconds
    ahead of the real one, and the sink of its mail."""
    relay = free_port()
    async with AsyncExitStack() as stack:
        peer = smsc if smsc is not None else await stack.enter_async_context(ScriptedSmsc())
        sink = await stack.enter_async_context(smtp_sink(relay))
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=relay, extra=PREMIUM)
        text = text.replace('type = "smpp"', 'type = "cimd2"')
        path = tmp_path / "config.toml"
        path.write_text(text)
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
            conn = await peer.accept()
            await conn.login()
            await confirmed_kp123(gw, path)
            acks = Acks(conn)
            try:
                yield gw, conn, acks, sink
            finally:
                acks.task.cancel()


async def settled(gw: Running, whole: int) -> None:
    """`whole` MOs stored and every mail they made gone out."""
    db = gw.store.db.conn
    await gw.until(lambda: db.execute("SELECT COUNT(*) FROM mo").fetchone()[0] == whole)
    await gw.until(lambda: db.execute("SELECT COUNT(*) FROM outbox WHERE state != 'sent'").fetchone()[0] == 0)
    await asyncio.sleep(0.3)


@pytest.mark.parametrize("when", ["after another MO", "after its ack was read"])
async def test_a_vote_sent_again_with_its_060_out_of_turn_is_one_mail_and_one_charge(
    tmp_path: Path, when: str
) -> None:
    ahead = [0.0]
    async with premium_cimd2(tmp_path, ahead) as (gw, conn, acks, sink):
        vote = deliver(4, PHONE, "KP123 A", STAMP)
        if when == "after another MO":  # the failing sequence, in one write: 004, 002, 004
            conn.send(encode(vote) + encode(deliver(2, OTHER, "KP123 B", STAMP)) + encode(vote))
        else:  # its 70 confirmed by the alive's answer, the same packet again 3 s on
            conn.send(encode(vote) + encode(deliver(2, OTHER, "KP123 B", STAMP)))
            await gw.until(lambda: acks_recorded(gw.store.db.conn, 2))
            ahead[0] += 3
            conn.send(vote)
        await gw.until(lambda: acks.numbers == [4, 2, 4])
        await settled(gw, 3)
        states = [s for (s,) in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
        assert states == ["premium", "premium", "duplicate"]
        assert charges(gw.config.db_path) == [("A", 300), ("B", 300)]
        assert first_lines(sink, CLIENT) == ["A", "B"]


async def test_the_same_vote_text_with_another_060_is_a_second_charge(tmp_path: Path) -> None:
    # The phone sent the vote again: the SMSC stamped it anew. Two SMS, two charges, even though the
    # second comes on the same connection moments after the first and behind another MO.
    async with premium_cimd2(tmp_path, [0.0]) as (gw, conn, acks, sink):
        first, again = deliver(4, PHONE, "KP123 A", STAMP), deliver(6, PHONE, "KP123 A", LATER)
        conn.send(encode(first) + encode(deliver(2, OTHER, "KP123 B", STAMP)) + encode(again))
        await gw.until(lambda: acks.numbers == [4, 2, 6])
        await settled(gw, 3)
        assert charges(gw.config.db_path) == [("A", 300), ("B", 300), ("A", 300)]
        assert first_lines(sink, CLIENT) == ["A", "A", "B"]
