"""What an SMSC can make of an SMPP link by flooding it or by answering oddly: deliveries beyond what
the link holds in memory, vendor TLVs by the thousand, stray answers, answers after its unbind.
Each test talks to a fake SMSC over loopback TCP, except where the rule is one object's bookkeeping
that no peer can drive to its edge in a test's time."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import pytest
import structlog

from smsc.base import Ack, DeliveryReport, InboundSms, LinkState, Outcome
from smsc.logthrottle import LogThrottle
from smsc.settings import LinkSettings
from smsc.smpp import deliveries, submits
from smsc.smpp.codec import DELIVER_SM, SUBMIT_SM_RESP, UNBIND, encode_resp, encode_sm
from smsc.smpp.codec import encode as encode_pdu
from smsc.smpp.submits import Submits
from tests.fakes.events import EventRecorder
from tests.fakes.smsc import HappySMSC, HeldSMSC, SilentSMSC
from tests.test_smpp_link import running_link, sms

DATA_SM = 0x00000103


class GatedEvents(EventRecorder):
    """Hands nothing back until `gate` opens: a store that is slow to commit."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
        await self.gate.wait()
        return await super().on_deliver(link, sms)

    async def on_report(self, link: str, report: DeliveryReport) -> Ack:
        await self.gate.wait()
        return await super().on_report(link, report)


async def peak_of(measure: Callable[[], int], peak: list[int]) -> None:
    """Sample `measure` at every turn of the loop (the readers act per read, between turns)."""
    while True:
        peak[0] = max(peak[0], measure())
        await asyncio.sleep(0)


def receipt(seq: int) -> bytes:
    text = b"id:%d sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:"
    return encode_sm(DELIVER_SM, seq, esm_class=0x04, source_addr="48601123456", source_addr_ton=1,
                     short_message=text % (10**9 + seq))  # fmt: skip


# --- deliveries beyond what a link holds ----------------------------------------------------------


async def test_an_smpp_receipt_flood_waits_in_tcp_while_a_bounded_number_is_committed() -> None:
    # 150,000 receipts in one write grew the daemon from 62 to 467 MB: a task for each deliver_sm.
    n = 1500  # 180 kB: several reads' worth
    ev = GatedEvents()
    async with HappySMSC() as smsc, running_link(smsc.port, events=ev) as (link, _):
        conn = link._conn
        assert conn is not None
        peak = [0]
        sampler = asyncio.create_task(peak_of(lambda: len(conn.tasks), peak))
        smsc.send_raw(b"".join(receipt(seq) for seq in range(1, n + 1)))
        await asyncio.sleep(0.3)  # the store is stuck: what is read meanwhile stays bounded
        held = peak[0]
        ev.gate.set()
        await ev.wait_until(lambda: len(ev.reports) == n)
        await smsc.wait_until(lambda: smsc.stats.commands["deliver_sm_resp"] == n)
        sampler.cancel()
    # Bounded, yet side by side: the bound is reached, not one at a time.
    assert held == peak[0] == deliveries.MAX_HANDLERS, (held, peak[0])


async def test_a_data_sm_with_thousands_of_vendor_tlvs_is_served_without_a_line_for_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # smpplib wrote a WARNING per unknown optional parameter: one 68 kB data_sm, 17,000 log lines.
    body = b"\0" + b"\x01\x01" + b"48601123456\0" + b"\x00\x00" + b"7155\0" + b"\x00\x00\x00"
    body += struct.pack(">HH", 0x0424, 2) + b"hi" + struct.pack(">HH", 0x1400, 0) * 2000
    async with HappySMSC() as smsc, running_link(smsc.port) as (_link, ev):
        with caplog.at_level(logging.WARNING):
            smsc.send_raw(struct.pack(">IIII", 16 + len(body), DATA_SM, 0, 77) + body)
            await ev.wait_until(lambda: len(ev.delivered) == 1)
    assert ev.delivered[0].text == "hi"
    assert len([r for r in caplog.records if r.name.startswith("smpplib")]) <= 1


# --- answers after the SMSC's unbind, a transport closing ---------------------------------------


@pytest.mark.parametrize("later", [False, True], ids=["same-write", "next-write"])
async def test_answers_that_follow_the_smscs_unbind_settle_their_parts(later: bool) -> None:
    # The SMSC answers two of five submits, unbinds, then answers the other three (as some do): the
    # three were thrown away with the connection and their parts sent again as possible duplicates.
    async with HeldSMSC() as smsc, running_link(smsc.port) as (link, ev):
        futures = [link.send(sms(f"part {i}")) for i in range(5)]
        await smsc.wait_for(5)
        [session] = smsc.sessions
        seqs = [seq for _session, seq, _verdict in smsc.held]
        answers = [encode_resp(SUBMIT_SM_RESP, seq, 0, f"id{seq}") for seq in seqs]
        unbind = encode_pdu(UNBIND, 999)
        if later:
            session.write(b"".join(answers[:2]) + unbind)
            await asyncio.sleep(0.2)
            session.write(b"".join(answers[2:]))
        else:
            session.write(b"".join(answers[:2]) + unbind + b"".join(answers[2:]))
        results = await asyncio.gather(*futures)
        assert [(r.outcome, r.message_id) for r in results] == [(Outcome.ACCEPTED, f"id{s}") for s in seqs]
        await smsc.wait_until(lambda: smsc.stats.commands["unbind_resp"] == 1)
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)  # and binds again


async def test_a_submit_written_to_a_closing_transport_is_not_taken_for_written() -> None:
    # send() refused the bytes, yet the submit was resolved as written: its re-send was logged and
    # counted as a possible duplicate of an SMS the SMSC never saw.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _ev):
        conn = link._conn
        assert conn is not None
        conn.writer.transport.close()  # a reset the reader has not seen yet
        result = await link.send(sms())
    assert result.outcome is Outcome.TEMPORARY and not result.written


# --- answers the link did not ask for, parts it keeps ---------------------------------------------


async def test_stray_submit_answers_do_not_keep_a_stuck_session_alive() -> None:
    # A whole window of submits unanswered ends the session, but any submit_sm_resp reset the count,
    # even one for a sequence number never sent: an SMSC that answers none of our submits and
    # strays now and then was never left.
    async with SilentSMSC() as smsc:
        async with running_link(
            smsc.port, window=3, response_timeout_seconds=0.3, late_answer_grace_seconds=0
        ) as (link, ev):

            async def strays() -> None:
                while True:
                    await asyncio.sleep(0.1)
                    smsc.send_raw(encode_resp(SUBMIT_SM_RESP, 0x7FFF0000, 0, "x"))

            stray = asyncio.create_task(strays())
            try:
                for _ in range(3):
                    assert (await link.send(sms())).outcome is Outcome.TEMPORARY
                await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
            finally:
                stray.cancel()


async def test_parts_read_as_a_full_window_are_not_kept_for_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    # A part whose 0x45 was read as a full window stays in the link's table until its submit is
    # answered otherwise; one that never comes back (sent by another link, expired) stayed for the
    # daemon's life. The table keeps the newest; a final answer of any kind forgets its part.
    monkeypatch.setattr(submits, "OVERFLOWS_KEPT", 5, raising=False)
    throttle = LogThrottle(structlog.get_logger())
    table = Submits(LinkSettings(name="op", port=1), asyncio.Event(), lambda _reason: None, throttle)
    other = table.expect(1, part=1)  # keeps another submit on the wire throughout
    for part in range(2, 22):
        answer = table.expect(part, part=part)
        table.on_resp(part, 0x45, b"")
        assert (await answer).outcome is Outcome.THROTTLED
    assert list(table.overflowed) == [17, 18, 19, 20, 21]
    answer = table.expect(30, part=21)
    table.on_nack(30, 0x45)  # refused for good by a generic_nack
    assert (await answer).outcome is Outcome.REJECTED and 21 not in table.overflowed
    assert not other.done()
    table.close("test")
