"""A NACK (99) of our acknowledgement (70) of an MO says the SMSC did not take it: it delivers the MO
again. Read as a stray NACK, the 70 counted as read once the next alive was answered, and the copy of
an MO without a 060 (which would name it) was a new SMS: a premium vote recorded, mailed and charged
twice. The NACKed acknowledgement is now refused, and the copy known as the same SMS. Against the
real daemon and a scripted SMSC over TCP.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from smsc.cimd2.packet import Op, P, Packet
from tests.fakes.cimd2 import PeerConnection
from tests.test_cimd2_mo_repeat import OTHER, Acks, premium_cimd2, settled
from tests.test_mo_redelivery import CLIENT, PHONE, charges, first_lines


def unstamped(number: int, source: str, text: str) -> Packet:
    """A deliver (20) with no 060, as some SMSCs send one (parse_mo takes it)."""
    return Packet.make(
        Op.DELIVER, number, (P.DESTINATION, "7355"), (P.ORIGINATOR, source), (P.USER_DATA, text)
    )


class Nacking(Acks):
    """The SMSC's reader: answers alives, and NACKs the 70s of the numbers in `refuse` as it reads
    them, before the alive written after them (so before their acknowledgement could count)."""

    def __init__(self, conn: PeerConnection, refuse: set[int]) -> None:
        self.refuse = refuse
        super().__init__(conn)

    def acknowledged(self, packet: Packet) -> None:
        if packet.number in self.refuse:
            self.refuse.discard(packet.number)
            self.conn.send(Packet(Op.NACK, packet.number))


async def test_an_mo_whose_ack_the_smsc_nacked_is_one_sms_when_delivered_again(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with premium_cimd2(tmp_path, [0.0]) as (gw, conn, acks, sink):
            acks.task.cancel()  # this test's reader NACKs
            smsc = Nacking(conn, {4})
            conn.send(unstamped(4, PHONE, "KP123 A"))
            await gw.until(lambda: smsc.numbers == [4])
            conn.send(unstamped(2, OTHER, "KP123 B"))  # another MO between (its 70 is taken)
            await gw.until(lambda: smsc.numbers == [4, 2])
            conn.send(unstamped(6, PHONE, "KP123 A"))  # the SMSC delivers the NACKed one again
            await gw.until(lambda: smsc.numbers == [4, 2, 6])
            await settled(gw, 3)
            smsc.task.cancel()
            states = [s for (s,) in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
            assert states == ["premium", "premium", "duplicate"]
            assert charges(gw.config.db_path) == [("A", 300), ("B", 300)]
            assert first_lines(sink, CLIENT) == ["A", "B"]
    (nacked,) = [e for e in logs if e["event"] == "cimd2.ack_nacked"]
    assert nacked["number"] == 4 and "stray_nack" not in [e["event"] for e in logs]
