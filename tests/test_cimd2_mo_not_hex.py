"""A CIMD2 MO whose binary user data (034) is no hex, with the daemon on a CIMD2 link to the simulator's
server over TCP.

The link answered it 70 and dropped it ("034 is not hex"): no mail, no premium_mo row. To a premium
number the phone paid, and the operator was never told, while SMPP hands damaged user data up with a
note. It is handed up as an SMS saying so, with the 034 as the SMSC wrote it; one with no originator
is still dropped, as any MO without a usable address is.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from smsc.cimd2.messages import UNREADABLE_SHOWN
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, STAFF, mail
from tests.test_cimd2_link import scripted
from tests.test_cimd2_mo_without_user_data import (
    FALLBACK,
    OURS,
    PHONE,
    bodies,
    deliver,
    gateway_on_cimd2,
    mo_rows,
    session,
)
from tests.test_mo_redelivery import charges

DAMAGED = "[The SMS came damaged: its binary user data (034) is not hex; no text is left."
NOT_HEX = ((P.DCS, "8"), (P.USER_DATA_BINARY, "00480069ZZ"))


async def test_a_reply_whose_034_is_no_hex_reaches_the_staff_member_said_to_be_damaged(
    tmp_path: Path,
) -> None:
    async with gateway_on_cimd2(tmp_path) as (gw, server, sink):
        to = f"601123456@{DOMAIN}"
        assert (await gw.send(mail(to, "Czy 10:00?", "Spotkanie"), [to])).error is None
        await server.wait_until(lambda: len(server.received) == 1, 20)
        await session(server).send_part(deliver(OURS, *NOT_HEX))
        await gw.until(lambda: bool(bodies(sink, STAFF)))
        [body] = bodies(sink, STAFF)
        assert body.startswith(DAMAGED), body
        assert "(10 characters):]\n00480069ZZ\n" in body, body  # what came, for the user to make out
        assert "Czy 10:00?" in body  # as the answer to the staff member's SMS
        [(text, _state)] = mo_rows(gw)
        assert text.startswith(DAMAGED) and text.endswith("\n00480069ZZ"), text
        assert server.answers == [(Op.DELIVER, 0)]  # acknowledged once, with no error


async def test_a_premium_mo_whose_034_is_no_hex_is_billed_and_mailed_to_the_fallback(tmp_path: Path) -> None:
    async with gateway_on_cimd2(tmp_path) as (gw, server, sink):
        # "KP123" in hex with a digit cut off: no password can be read from it.
        await session(server).send_part(deliver("7355", (P.DCS, "8"), (P.USER_DATA_BINARY, "4B503132330")))
        await gw.until(lambda: bool(bodies(sink, FALLBACK)))
        [body] = bodies(sink, FALLBACK)
        assert body.startswith(DAMAGED), body
        assert "\n4B503132330\n" in body, body
        assert "Not forwarded to a client" in body, body
        assert "Premium SMS to 7355 from +48 601 123 456" in body, body
        [(text, price)] = charges(gw.config.db_path)
        assert text.startswith(DAMAGED) and price == 300, (text, price)  # at the number's price
        assert server.answers == [(Op.DELIVER, 0)]


async def test_the_link_hands_up_a_034_that_is_no_hex_and_still_drops_one_without_an_originator() -> None:
    long = "G" * (UNREADABLE_SHOWN + 50)
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (link, events, conn, _peer):
            conn.send(Packet.make(Op.DELIVER, 0, *deliver("7155", *NOT_HEX)))
            conn.send(Packet.make(Op.DELIVER, 2, (P.DESTINATION, "7155"), *NOT_HEX))  # no originator
            conn.send(Packet.make(Op.DELIVER, 4, *deliver("7155", (P.USER_DATA_BINARY, long))))
            answers = [await conn.next() for _ in range(3)]
            assert [(a.op, a.number, a.params) for a in answers] == [(70, 0, []), (70, 2, []), (70, 4, [])]
            await events.wait_for(lambda: len(events.delivered) == 2)
            first, cut = events.delivered
            assert (first.source, first.destination, first.data_coding) == (PHONE, "7155", 8)
            assert first.text.startswith(DAMAGED) and first.text.endswith("\n00480069ZZ"), first.text
            assert first.raw["034"] == "00480069ZZ"  # kept whole with the other parameters
            assert cut.text.endswith("\n" + "G" * UNREADABLE_SHOWN + " …") and cut.raw["034"] == long
            assert link.stats().extra["mo_rejected"] == "1"
    warned = [e for e in logs if e["event"] == "cimd2.bad_user_data"]
    assert [e["length"] for e in warned] == [10, len(long)]
    assert not any("00480069ZZ" in str(e) for e in logs)  # the phone's data is not logged
