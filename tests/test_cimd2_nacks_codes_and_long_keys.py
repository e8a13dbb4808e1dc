"""What a CIMD2 SMSC's odd answers make of a submit: one NACKed (99) until the link gives up was taken
as lost on the wire (a "possible duplicate", and at expiry "may have reached the phone") though a
NACK says the SMSC did not process the packet; a submit response whose 900 is no number (`900:E300`)
was taken as an acceptance with no key; a 060 or 021 of kilobytes was kept whole as a key. Each test
drives the link against a scripted SMSC over loopback TCP."""

from __future__ import annotations

import asyncio

from smsc.base import Outcome
from smsc.cimd2.messages import MAX_KEY
from smsc.cimd2.packet import Op, P, Packet
from smsc.cimd2.requests import NACK_TRIES
from tests.test_cimd2_link import scripted, sms


async def test_a_submit_nacked_until_the_link_gives_up_ends_unwritten() -> None:
    async with scripted() as (link, _events, conn, peer):
        pending = asyncio.create_task(link.submit(sms()))
        for _ in range(NACK_TRIES):
            submit = await conn.next()
            assert submit.op == Op.SUBMIT
            conn.send(Packet(Op.NACK, submit.number))
        result = await pending
        again = await peer.accept()  # the link logs in anew
        await again.login()
    assert result.outcome is Outcome.TEMPORARY
    assert not result.written and result.lost_behind is None  # no copy the SMSC may hold
    assert f"{NACK_TRIES} NACKs (99) for 03:003: the SMSC did not process it" in (result.error or "")


async def test_with_others_on_the_wire_a_nacked_out_submit_stays_written() -> None:
    # An SMSC may NACK with the number it expects next: with two outstanding, the NACKs counted against
    # the first may have meant the second while a copy of the first was on its way. Neither is known
    # not to be held: both stay written (sent again as possible duplicates), as before.
    async with scripted(window=2) as (link, _events, conn, _peer):
        first = asyncio.create_task(link.submit(sms("+48601000001", part_id=1)))
        second = asyncio.create_task(link.submit(sms("+48601000002", part_id=2)))
        one, two = await conn.next(), await conn.next()
        for _ in range(NACK_TRIES):
            conn.send(Packet(Op.NACK, one.number))
            if _ < NACK_TRIES - 1:
                assert (await conn.next()).number == one.number
        nacked, other = await first, await second
    assert (nacked.outcome, nacked.written) == (Outcome.TEMPORARY, True)
    assert (other.outcome, other.written) == (Outcome.TEMPORARY, True), (other, two.number)


async def test_a_submit_response_whose_900_is_no_number_is_not_an_acceptance() -> None:
    async with scripted() as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, "E300"),
                              (P.ERROR_TEXT, "incorrect destination address")))  # fmt: skip
        result = await pending
    assert (result.outcome, result.message_id) == (Outcome.TEMPORARY, None)
    assert result.error == "CIMD2 unreadable error code 900 'E300': incorrect destination address"


async def test_a_submit_response_with_900_zero_is_still_an_acceptance() -> None:
    async with scripted() as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, "0"), (P.SCTS, "261121045622")))
        result = await pending
    assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, "261121045622:48601123456")


async def test_a_submit_response_with_a_blank_900_and_its_060_is_an_acceptance() -> None:
    # A blank 900 is no code (Kannel accepts it): refused, every SMS went again until its tries ran out.
    for blank in ("", " "):
        async with scripted() as (link, _events, conn, _peer):
            pending = asyncio.create_task(link.submit(sms()))
            submit = await conn.next()
            conn.send(
                Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, blank), (P.SCTS, "261121045622"))
            )
            result = await pending
        assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, "261121045622:48601123456"), blank


async def test_a_060_too_long_for_a_key_gives_none() -> None:
    # A 060 of 4 KB (a packet carries it) was the part's key, and a report's: stored whole.
    stamp = "2" * 3000
    async with scripted() as (link, events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.SCTS, stamp)))
        result = await pending
        report = [(P.DESTINATION, "+48601123456"), (P.SCTS, stamp), (P.STATUS_CODE, "4")]
        conn.send(Packet.make(Op.STATUS_REPORT, 0, *report))
        assert (await conn.next()).op == Op.STATUS_REPORT_RESP  # acknowledged: it cannot be read better
        edge = [(P.DESTINATION, "+48601123456"), (P.SCTS, "2" * (MAX_KEY - 12)), (P.STATUS_CODE, "4")]
        conn.send(Packet.make(Op.STATUS_REPORT, 2, *edge))
        assert (await conn.next()).op == Op.STATUS_REPORT_RESP
        await events.wait_for(lambda: len(events.reports) == 1)
    assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, None)
    assert [len(r.message_id) for r in events.reports] == [MAX_KEY]
    assert link.stats().extra["reports_rejected"] == "1"
