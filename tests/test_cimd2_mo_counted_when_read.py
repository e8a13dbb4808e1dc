"""The SMSC's requests are counted as the link reads them, deliveries as alives: the count places each MO
on the SMSC's counter of 128 numbers (`smsc.cimd2.mostamps`), and an MO under the number, 060, phone and
text of an earlier one before the counter can have come round is that request again (`resent`: the same
SMS whatever became of its acknowledgement). Deliveries were counted only when served: alives read while
one waited in the inbox were counted before it, its window shortened by them, and the SMSC's resend
102 requests after the first, 30 alives read behind it, was taken as past the window.

Against the scripted SMSC over TCP: the packets written in one go are read before the first is served."""

from __future__ import annotations

from smsc.cimd2.packet import Op, Packet, encode
from tests.test_cimd2_link import mo, scripted


async def test_an_mo_resent_is_placed_on_the_counter_when_read() -> None:
    async with scripted() as (_link, events, conn, _peer):
        conn.send(mo(200, text="KP123 A"))
        conn.send(mo(202, text="KP123 B"))
        await events.wait_for(lambda: len(events.delivered) == 2)
        for i in range(100):  # the SMSC's other requests
            conn.send(Packet(Op.ALIVE, (204 + 2 * i) % 256))
        # Its resend under 200, 101 other requests after it, and 30 alives read behind it in one go.
        conn.send(b"".join(encode(p) for p in [mo(200, text="KP123 A")] + [Packet(Op.ALIVE, 10)] * 30))
        await events.wait_for(lambda: len(events.delivered) == 3)
        again = events.delivered[2]
        assert again.text == "KP123 A"
        assert again.resent
