"""Cimd2Link's protocol corners, against a scripted SMSC or packet by packet: packet numbers,
retransmitted and repeated MOs, when an MO's acknowledgement counts, MOs with an empty address or
binary user data, alive and unknown operations, congestion and nacks, the whole packet number in a
timeout, unknown or intermediate status codes, garbage between packets, bad submits, and a status
report meeting its submit however the SMSC writes the number. Split from test_cimd2_link.py by
subject (it was over 400 lines); `scripted` and `mo` stay there, as other modules import them."""

from __future__ import annotations

import asyncio

import pytest

from smsc.base import Concat, InboundSms, OutboundSms, Outcome, ReportStatus
from smsc.cimd2.messages import parse_report, submit_result
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.decoding import unpack_septets
from smsc.gsmalphabet import gsm_decode, gsm_encode
from tests.test_cimd2_link import mo, scripted, sms


async def test_packet_numbers_are_odd_and_restart_at_001_on_each_login() -> None:
    # Login is 001, our next request 003; after a reconnect the login is 001 again.
    async with scripted() as (link, _events, conn, peer):
        pending = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        assert (submit.op, submit.number) == (Op.SUBMIT, 3)
        assert submit.params[:2] == [(P.DESTINATION, "+48601123456"), (P.ORIGINATOR, "7155")]
        conn.send(Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+48601123456"), (P.SCTS, "261121045622")))
        assert (await pending).message_id == "261121045622:48601123456"
        conn.close()
        again = await peer.accept()
        assert (await again.login()).number == 1


async def test_retransmitted_mo_is_acknowledged_but_handed_up_once() -> None:
    # The same 20 with the same number twice (our 70 was "lost"): two 70s, one on_deliver.
    async with scripted() as (_link, events, conn, _peer):
        conn.send(mo(0))
        assert (await conn.next()).op == Op.DELIVER_RESP
        alive = await conn.next()  # asks whether the SMSC read the 70
        assert (alive.op, alive.number) == (Op.ALIVE, 3)
        conn.send(mo(0))
        answer = await conn.next()
        assert (answer.op, answer.number, answer.params) == (Op.DELIVER_RESP, 0, [])
        assert events.acked == []  # no answer yet to a request written after the 70
        conn.send(Packet(Op.ALIVE_RESP, 3))
        await events.wait_for(lambda: events.acked == [("hi", True)])
        conn.send(mo(2, text="next"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert [m.text for m in events.delivered] == ["hi", "next"]


async def test_another_mo_under_the_number_of_the_last_is_handed_up() -> None:
    # An SMSC that numbers every request 999 (or restarts its count): a new MO, with another 060 and
    # text, was taken for a retransmission of the last, acknowledged and dropped (a vote lost).
    async with scripted() as (_link, events, conn, _peer):
        conn.send(mo(999, text="vote A"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert (await conn.next()).op == Op.ALIVE
        second = mo(999, text="vote B")
        second.params[2] = (P.SCTS, "261121045623")
        conn.send(second)
        assert (await conn.next()).op == Op.DELIVER_RESP
        await events.wait_for(lambda: len(events.delivered) == 2)
        assert [m.text for m in events.delivered] == ["vote A", "vote B"]


async def test_an_mo_ack_counts_once_the_smsc_answered_a_request_written_after_it() -> None:
    # Each 70 is followed by an alive (one for a burst); its answer confirms the 70s before it. A
    # connection that ends before that answer leaves the MO unconfirmed: the SMSC may not have read
    # the 70 and may deliver the MO again.
    async with scripted() as (_link, events, conn, peer):
        conn.send(encode(mo(0, text="one")) + encode(mo(2, text="two")))  # in one read
        got = [await conn.next() for _ in range(3)]
        assert [(p.op, p.number) for p in got] == [(Op.DELIVER_RESP, 0), (Op.DELIVER_RESP, 2), (Op.ALIVE, 3)]
        conn.send(Packet(Op.ALIVE_RESP, 3))
        await events.wait_for(lambda: events.acked == [("one", True), ("two", True)])
        conn.send(mo(4, text="three"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert (await conn.next()).op == Op.ALIVE
        conn.close()  # gone before answering: the 70 may be lost with it
        await events.wait_for(lambda: len(events.acked) == 3)
        assert events.acked[2] == ("three", False)
        await (await peer.accept()).login()


async def test_mo_with_an_empty_address_is_acknowledged_not_handed_up() -> None:
    # Unusable MOs get a plain 70 (so the SMSC stops resending) and a counter, never an on_deliver.
    # One with no user data at all is the empty SMS a phone sent: test_cimd2_mo_without_user_data; one
    # whose 034 is no hex is handed up said to be damaged: test_cimd2_mo_not_hex.
    async with scripted() as (link, events, conn, _peer):
        conn.send(mo(0, source=""))
        conn.send(mo(2, destination=""))
        answers = [await conn.next() for _ in range(2)]
        assert [(a.op, a.number, a.params) for a in answers] == [(70, 0, []), (70, 2, [])]
        assert events.delivered == [] and link.stats().extra["mo_rejected"] == "2"


async def test_mo_decoding_of_binary_udh_and_hex_user_data() -> None:
    # 034 is decoded by its DCS, a 032 concat UDH gives Concat; a 00-prefixed sender becomes +.
    async with scripted() as (_link, events, conn, _peer):
        conn.send(Packet.make(Op.DELIVER, 0, (P.DESTINATION, "7155"), (P.ORIGINATOR, "0048601"),
                              (P.DCS, 8), (P.UDH, "050003070201"), (P.USER_DATA_BINARY, "0142")))  # fmt: skip
        await conn.next()
        [got] = events.delivered
        assert got == InboundSms(
            source="+48601", destination="7155", text="ł", data_coding=8, concat=Concat(7, 2, 1),
            raw={"021": "7155", "023": "0048601", "030": "8", "032": "050003070201", "034": "0142"},
        )  # fmt: skip


async def test_binary_user_data_with_a_gsm_dcs_is_read_as_packed_septets() -> None:
    # 034 with DCS 0 carries the air interface's packed septets (protocols.md 1.10); read one
    # character per octet, a STOP arrived as 'SêΓ\n' and the phone's opt-out was missed.
    async with scripted() as (_link, events, conn, _peer):
        conn.send(Packet.make(Op.DELIVER, 0, (P.DESTINATION, "7155"), (P.ORIGINATOR, "+48601123456"),
                              (P.DCS, 0), (P.USER_DATA_BINARY, "53EA130A")))  # fmt: skip
        await conn.next()
        assert [m.text for m in events.delivered] == ["STOP"]
    # Seven septets in seven octets leave seven bits spare: padding (CR, or zero), not a last '@'.
    assert gsm_decode(unpack_septets(bytes.fromhex("41E19058341E91"))) == "ABCDEFGH"
    assert gsm_decode(unpack_septets(bytes.fromhex("41E19058341E01"))) == "ABCDEFG"
    assert gsm_decode(unpack_septets(bytes.fromhex("41E19058341E1B"))) == "ABCDEFG"  # CR padding


async def test_alive_from_the_smsc_and_unknown_operations_are_answered() -> None:
    # 40 → 90 with the same number; an operation we do not serve → 98 with 900:1.
    async with scripted() as (_link, _events, conn, _peer):
        conn.send(Packet(Op.ALIVE, 8))
        assert (await conn.next()).op == Op.ALIVE_RESP
        conn.send(Packet(Op.CANCEL, 10))
        answer = await conn.next()
        assert (answer.op, answer.number, answer.get(P.ERROR_CODE)) == (Op.GENERAL_ERROR, 10, "1")


async def test_congestion_throttles_and_nack_resends() -> None:
    # 900:10 is THROTTLED; a 99 NACK makes the link resend the same request with the same number.
    async with scripted(throttle_pause_seconds=0) as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        first = await conn.next()
        conn.send(Packet(Op.NACK, first.number))
        resent = await conn.next()
        assert (resent.number, resent.params) == (first.number, first.params)
        conn.send(Packet.make(Op.SUBMIT_RESP, resent.number, (P.ERROR_CODE, 10)))
        assert (await pending).outcome is Outcome.THROTTLED and link.stats().throttled == 1


async def test_nack_naming_the_expected_number_moves_the_count_on() -> None:
    # The SMSC counts our requests from 253: the first submit (003) is NACKed with 253 and resent as
    # 253; the requests after it follow the SMSC's count (255, then 001 after the wrap) and go through
    # at the first try, so only one NACK is ever needed.
    async with scripted() as (link, _events, conn, _peer):
        seen: list[int] = []
        for i in range(3):
            pending = asyncio.create_task(link.submit(sms(part_id=i)))
            submit = await conn.next()
            seen.append(submit.number)
            if i == 0:
                conn.send(Packet(Op.NACK, 253))
                submit = await conn.next()
                seen.append(submit.number)
            conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, "+48601123456"),
                                  (P.SCTS, "261121045622")))  # fmt: skip
            assert (await pending).outcome is Outcome.ACCEPTED
        assert seen == [3, 253, 255, 1] and link.stats().extra["nacks"] == "1"


async def test_response_timeout_names_the_whole_packet_number() -> None:
    # The reason for the drop names the request as 03:003, not a truncated 03:00.
    async with scripted(response_timeout_seconds=0.2) as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        assert (await conn.next()).number == 3
        result = await pending
        assert "no response to 03:003 within the response timeout" in (result.error or "")


async def test_status_reports_with_unknown_or_intermediate_codes_stay_pending() -> None:
    # 061:1 (in process) and an unknown 061 are PENDING; a 23 without 060 is acknowledged and dropped.
    async with scripted() as (link, events, conn, _peer):
        for number, code in ((0, "1"), (2, "0")):
            report = [(P.DESTINATION, "+48601"), (P.SCTS, "261121045622"), (P.STATUS_CODE, code)]
            conn.send(Packet.make(Op.STATUS_REPORT, number, *report))
            assert (await conn.next()).op == Op.STATUS_REPORT_RESP
        conn.send(Packet.make(Op.STATUS_REPORT, 4, (P.DESTINATION, "+48601"), (P.STATUS_CODE, 4)))
        assert (await conn.next()).op == Op.STATUS_REPORT_RESP
        assert [rep.status for rep in events.reports] == [ReportStatus.PENDING, ReportStatus.PENDING]
        assert link.stats().extra["reports_rejected"] == "1"


async def test_garbage_between_packets_does_not_disturb_the_session() -> None:
    # Noise, a frame with no ETX and a bad header are counted; the next MO is still served.
    async with scripted() as (link, events, conn, _peer):
        conn.send(b"\xff\x00noise\x02half a frame\x0299:9\t\x03")
        conn.send(mo(0))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert len(events.delivered) == 1 and int(link.stats().extra["parse_errors"]) >= 2


async def test_bad_submits_never_reach_the_wire() -> None:
    # An over-long alphanumeric sender is MALFORMED locally; a stopped link answers TEMPORARY.
    async with scripted() as (link, _events, _conn, _peer):
        bad = OutboundSms(1, "A-very-long-sender", "+48601", 0, gsm_encode("x"), "x")
        result = await link.submit(bad)
        assert result.outcome is Outcome.MALFORMED and "11" in (result.error or "")
    assert (await link.submit(sms())).outcome is Outcome.TEMPORARY


@pytest.mark.parametrize("written", ["0048601123456", "48601123456", "+48601123456"])
def test_a_status_report_meets_its_submit_however_the_smsc_writes_the_number(written: str) -> None:
    # A report writing the number with the international prefix "00" made a key its submit's never
    # met: the SMS stayed `submitted`, ended `unreported`, and a failure was never bounced.
    answer = Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+48601123456"), (P.SCTS, "261201204345"))
    submitted = submit_result(sms(), answer, link="op")
    report = parse_report(
        Packet.make(
            Op.STATUS_REPORT, 5, (P.DESTINATION, written), (P.SCTS, "261201204345"), (P.STATUS_CODE, 4)
        ),
        link="op",
    )
    assert not isinstance(report, str) and report.message_id == submitted.message_id
