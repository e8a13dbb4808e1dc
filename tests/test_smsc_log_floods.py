"""Log lines an SMSC can trigger at will, one per PDU, go through the connection's `LogThrottle`: a
hostile SMSC floods thousands of unusable receipts (SMPP), unusable deliveries or retransmissions
(CIMD2) over loopback TCP, and the log gets a few lines whose `suppressed` counts add up to the flood,
while the link's counts stay exact. Helpers are `test_hostile_smsc`'s."""

from __future__ import annotations

import pytest
import structlog

from smsc.base import Outcome
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.fakes.smsc import HappySMSC
from tests.test_cimd2_link import mo, scripted
from tests.test_hostile_smsc import events, occurrences, settle
from tests.test_smpp_link import running_link, sms

FLOOD = 2000
AT_MOST_DURING = 3  # one line, plus one a second should the flood take longer than the interval


def unusable_report(number: int) -> Packet:
    """A status report (23) the link refuses to hand up ("status report without 060 or 021"), and
    acknowledges."""
    return Packet.make(Op.STATUS_REPORT, number, (P.DESTINATION, "+48601123456"), (P.STATUS_CODE, "4"))


def rejections(counts: dict[str, str]) -> int:
    return int(counts["mo_rejected"]) + int(counts["reports_rejected"])


async def test_smpp_receipt_flood_that_matches_nothing_is_logged_a_few_lines_with_the_count() -> None:
    # Each deliver_sm flagged as a receipt whose text and TLVs name no message made its own
    # smpp.bad_receipt warning: an SMSC could write the log full at will.
    receipt = b"".join(
        encode_sm(DELIVER_SM, 60_000 + n, esm_class=0x04, source_addr="48601123456", short_message=b"no id")
        for n in range(FLOOD)
    )
    async with HappySMSC() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_link(smsc.port) as (link, _ev):
                smsc.send_raw(receipt)
                # Its answer comes after the flood on the same stream: the flood was read by then.
                assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
                during = len(events(logs, "smpp.bad_receipt"))
                bad_pdus = link.stats().extra["bad_pdus"]
        lines = events(logs, "smpp.bad_receipt")
    assert 1 <= during <= AT_MOST_DURING, during
    assert bad_pdus == str(FLOOD)  # every one counted, only the lines are held back
    assert occurrences(lines) == FLOOD  # the close said the rest
    assert [e["summary"] for e in lines if e.get("summary")] == [True]
    # What it was, not what it said: its length and the receipt fields it has (none here), no text.
    assert (lines[0]["length"], lines[0]["fields"]) == (len(b"no id"), []), lines[0]
    assert "data" not in lines[0]


async def test_cimd2_flood_of_unusable_deliveries_is_logged_a_few_lines_per_reason() -> None:
    # Each 20 or 23 the link cannot hand up made one cimd2.delivery_rejected warning. A flood of one
    # reason must not hide the first line of another: an MO without an originator in the middle of it.
    numbers = [2 * (n % 100) for n in range(FLOOD)]  # never twice in a row: no retransmission
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (link, _ev, peer, _smsc):
            flood = [encode(unusable_report(number)) for number in numbers]
            flood[FLOOD // 2] = encode(mo(numbers[FLOOD // 2], source=""))
            peer.send(b"".join(flood))
            await settle(lambda: rejections(link.stats().extra) == FLOOD, 30)
            during = events(logs, "cimd2.delivery_rejected")
            rejected = (link.stats().extra["reports_rejected"], link.stats().extra["mo_rejected"])
        lines = events(logs, "cimd2.delivery_rejected")
    assert rejected == (str(FLOOD - 1), "1")
    assert 2 <= len(during) <= 2 * AT_MOST_DURING, len(during)
    by_reason = {
        reason: [e for e in lines if e["reason"] == reason]
        for reason in ("status report without 060 or 021", "empty destination or originator address")
    }
    assert occurrences(by_reason["status report without 060 or 021"]) == FLOOD - 1
    assert occurrences(by_reason["empty destination or originator address"]) == 1
    assert len(lines) == sum(map(len, by_reason.values()))


async def test_cimd2_retransmission_flood_is_logged_a_few_lines_with_the_count() -> None:
    # The same 20 again and again (as if every 70 of ours were lost) made one info line each.
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (link, ev, peer, _smsc):
            packet = encode(mo(42))
            peer.send(packet * (FLOOD + 1))  # taken once, then FLOOD retransmissions
            await settle(lambda: int(link.stats().extra["duplicates"]) == FLOOD, 30)
            during = len(events(logs, "cimd2.retransmission"))
            duplicates = link.stats().extra["duplicates"]
            assert len(ev.delivered) == 1
        lines = events(logs, "cimd2.retransmission")
    assert duplicates == str(FLOOD)
    assert 1 <= during <= AT_MOST_DURING, during
    assert occurrences(lines) == FLOOD
    assert [e["summary"] for e in lines if e.get("summary")] == [True]


@pytest.mark.parametrize(
    ("extra", "event"),
    [((P.UDH, "zz"), "cimd2.bad_udh"), ((P.USER_DATA_BINARY, "zz"), "cimd2.bad_user_data")],
    ids=["udh", "034"],
)
async def test_cimd2_flood_of_mos_with_unreadable_hex_is_logged_a_few_lines_with_the_count(
    extra: tuple[int, str], event: str
) -> None:
    # Each 20 whose UDH (032) is not hex was handed up as text and made its own cimd2.bad_udh warning;
    # one whose 034 is not hex is handed up said to be damaged, with a warning of its own.
    numbers = [2 * (n % 100) for n in range(FLOOD)]
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (_link, ev, peer, _smsc):
            params = [p for p in mo(0).params if extra[0] != P.USER_DATA_BINARY or p[0] != P.USER_DATA]
            flood = [Packet.make(Op.DELIVER, n, *params, extra) for n in numbers]
            peer.send(b"".join(map(encode, flood)))
            await settle(lambda: len(ev.delivered) == FLOOD, 30)
            during = len(events(logs, event))
        lines = events(logs, event)
    assert 1 <= during <= AT_MOST_DURING, during
    assert occurrences(lines) == FLOOD
