"""SmppLink against fake SMSCs over real TCP on loopback: the `smsc.base` contract, SMPP style."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from gateway.config import SmscSection
from smsc.base import (
    Ack,
    DeliveryReport,
    InboundSms,
    LinkState,
    OutboundSms,
    Outcome,
    ReportStatus,
    SubmitResult,
)
from smsc.encoding import concat_udh
from smsc.gsmalphabet import gsm_encode
from smsc.pacing import LinkPacer
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.link import SmppLink, classify_status, normalise_message_id, source_address, status_text
from tests.fakes.smsc import (
    DeafSMSC,
    DisconnectingSMSC,
    DlrFirstSMSC,
    EagerMoSMSC,
    EventRecorder,
    FakeSMSC,
    HappySMSC,
    LateAnswerSMSC,
    SilentSMSC,
    ThrottlingSMSC,
)

ME, PHONE = "+48100200300", "+48601123456"


def sms(text: str = "hello", *, dest: str = PHONE, source: str = ME, **kw: Any) -> OutboundSms:
    if "payload" not in kw:
        kw["payload"] = gsm_encode(text)
    kw.setdefault("data_coding", 0)
    return OutboundSms(part_id=1, source=source, destination=dest, text=text, **kw)


@asynccontextmanager
async def running_link(
    port: int,
    *,
    password: str = "secret",
    events: EventRecorder | None = None,
    active: bool = True,
    **cfg: Any,
) -> AsyncIterator[tuple[SmppLink, EventRecorder]]:
    """A started link with fast reconnects; waits until it is bound unless `active` is False."""
    settings: dict[str, Any] = {
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "response_timeout_seconds": 5,
        "throttle_pause_seconds": 0.05,
        **cfg,
    }
    section = SmscSection(name="op", type="smpp", port=port, system_id="smsgw", **settings)
    link = SmppLink(section.driver_settings(), password=password)
    ev = events or EventRecorder()
    await link.start(ev)
    try:
        if active:
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
        yield link, ev
    finally:
        await link.stop(drain=False)


# --- submit_sm as the SMSC sees it ----------------------------------------------------------------


async def test_gsm_submit_reaches_the_smsc_with_international_addresses() -> None:
    # A GSM part goes as unpacked septets, DC 0, no UDHI, TON/NPI 1/1 both ways, DLR requested.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        result = await link.submit(sms("Hi @ home {ok}"))
        assert result.outcome is Outcome.ACCEPTED and result.message_id == "1"
        got = smsc.received[0]
        assert got.text == "Hi @ home {ok}" and got.payload == gsm_encode("Hi @ home {ok}")
        assert (got.data_coding, got.esm_class, got.udh) == (0, 0, b"")
        assert (got.source, got.source_ton, got.source_npi) == ("48100200300", 1, 1)
        assert (got.destination, got.dest_ton, got.dest_npi) == (PHONE, 1, 1)
        assert got.want_report


async def test_ucs2_submit_keeps_the_text() -> None:
    # A UCS-2 part goes as UTF-16BE with data_coding 8.
    text = "Zażółć gęślą jaźń"
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        result = await link.submit(sms(text, data_coding=8, payload=text.encode("utf-16-be")))
        assert result.outcome is Outcome.ACCEPTED
        assert (smsc.received[0].data_coding, smsc.received[0].text) == (8, text)


async def test_udh_parts_set_udhi_and_prefix_the_header() -> None:
    # Concatenated parts carry esm_class 0x40 and short_message = UDH + payload.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        for seq, text in enumerate(["first half ", "second half"], 1):
            udh = concat_udh(0x42, 2, seq)
            assert (await link.submit(sms(text, udh=udh))).outcome is Outcome.ACCEPTED
        assert [(s.esm_class, s.udh, s.text) for s in smsc.received] == [
            (0x40, bytes.fromhex("050003420201"), "first half "),
            (0x40, bytes.fromhex("050003420202"), "second half"),
        ]


@pytest.mark.parametrize(
    ("source", "wire"),
    [("ACME", ("ACME", 5, 0)), ("7155", ("7155", 3, 0)), ("600111222", ("600111222", 2, 1))],
)
async def test_sender_kinds_get_their_ton_npi(source: str, wire: tuple[str, int, int]) -> None:
    # Alphanumeric, short code and national senders are marked so the SMSC does not refuse them.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        await link.submit(sms(source=source))
        got = smsc.received[0]
        assert (got.source, got.source_ton, got.source_npi) == wire


async def test_configured_ton_npi_override_autodetection() -> None:
    # source_ton / source_npi from the config win over what the sender looks like.
    async with HappySMSC() as smsc, running_link(smsc.port, source_ton=0, source_npi=9) as (link, _):
        await link.submit(sms(source="ACME"))
        assert (smsc.received[0].source_ton, smsc.received[0].source_npi) == (0, 9)
    assert source_address("+48", None, 3) == (1, 3, "48")


async def test_validity_and_no_report_request() -> None:
    # Validity goes as absolute UTC; want_report=False asks for no receipt and none comes.
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        assert (await link.submit(sms(validity=when, want_report=False))).outcome is Outcome.ACCEPTED
        assert smsc.received[0].validity == "300102030405000+"
        assert not smsc.received[0].want_report
        await link.submit(sms())
        await ev.wait_until(lambda: len(ev.reports) == 1)
        assert ev.reports[0].message_id == "2"


async def test_rejected_destination_is_permanent_with_the_status_name() -> None:
    # A refusal that names the destination is REJECTED, worded for the sender's bounce.
    async with HappySMSC(reject_suffixes=["0000"]) as smsc, running_link(smsc.port) as (link, _):
        result = await link.submit(sms(dest="+48601110000"))
        assert result == type(result)(Outcome.REJECTED, None, "ESME_RINVDSTADR (0x0B)")
        bad = await link.submit(sms(dest="+48 601"))
        assert bad.outcome is Outcome.REJECTED and len(smsc.received) == 1


async def test_oversized_short_message_is_malformed_and_not_sent() -> None:
    # More than 254 octets cannot be encoded; it never reaches the SMSC.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        result = await link.submit(sms("x" * 255))
        assert result.outcome is Outcome.MALFORMED
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert len(smsc.received) == 1


def paced(pacer: LinkPacer, link: SmppLink, part: OutboundSms) -> Awaitable[SubmitResult]:
    """A submit through the link's pacer, as the dispatcher sends it."""
    return pacer.submit(lambda: link.submit(part), lambda r: r.outcome)


async def test_window_is_never_exceeded() -> None:
    # With window 3 and a slow SMSC, at most 3 submit_sm are ever unanswered, and 3 are pipelined.
    async with HappySMSC(response_delay=0.2) as smsc, running_link(smsc.port, window=3) as (link, _):
        pacer = LinkPacer(link.stats().window, 1000, 0.05)
        results = await asyncio.gather(*(paced(pacer, link, sms(f"m{i}")) for i in range(9)))
        assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 9
        assert smsc.stats.max_outstanding == 3
        assert link.stats().in_flight == 0 and link.stats().submitted == 9


# --- delivery receipts ----------------------------------------------------------------------------


async def test_receipt_carries_the_submit_message_id() -> None:
    # on_report gets the same key that submit returned, with the phone it went to.
    async with HappySMSC(first_id=41) as smsc, running_link(smsc.port) as (link, ev):
        result = await link.submit(sms())
        await ev.wait_until(lambda: bool(ev.reports))
        assert ev.reports[0].message_id == result.message_id == "42"
        assert ev.reports[0].status is ReportStatus.DELIVERED
        assert ev.reports[0].destination == PHONE


async def test_failed_receipt_is_a_failure_with_a_reason() -> None:
    # A number the SMSC cannot reach ends in a FAILED report naming the state.
    async with HappySMSC(fail_suffixes=["13"]) as smsc, running_link(smsc.port) as (link, ev):
        await link.submit(sms(dest="+48601123413"))
        await ev.wait_until(lambda: bool(ev.reports))
        assert ev.reports[0].status is ReportStatus.FAILED and "UNDELIV" in (ev.reports[0].error or "")


async def test_receipt_before_submit_resp_still_matches() -> None:
    # Some SMSCs report before answering the submit: the ids still agree.
    async with DlrFirstSMSC() as smsc, running_link(smsc.port) as (link, ev):
        result = await link.submit(sms())
        await ev.wait_until(lambda: bool(ev.reports))
        assert ev.reports[0].message_id == result.message_id == "1"


def _hex(i: str) -> str:
    return format(int(i), "X")


@pytest.mark.parametrize(
    ("mode", "resp_format", "receipt_format", "match"),
    [
        ("hex_to_dec", _hex, str, True),  # answers in hex, reports in decimal
        ("dec_to_hex", str, _hex, True),  # answers in decimal, reports in hex
        ("as_is", _hex, _hex, True),  # hex both ways, compared case-insensitively
        ("as_is", _hex, str, False),  # without the option the keys cannot meet
    ],
)
async def test_message_id_type_reconciles_hex_and_decimal(
    mode: str, resp_format: Any, receipt_format: Any, match: bool
) -> None:
    # message_id_type converts the submit_sm_resp id so that the receipt's id finds it.
    fake = HappySMSC(first_id=254, message_id_format=resp_format, receipt_id_format=receipt_format)
    async with fake as smsc, running_link(smsc.port, message_id_type=mode) as (link, ev):
        result = await link.submit(sms())
        await ev.wait_until(lambda: bool(ev.reports))
        assert (ev.reports[0].message_id == result.message_id) is match


async def test_retry_ack_makes_the_smsc_deliver_again() -> None:
    # Ack.RETRY answers 0x64 ESME_RX_T_APPN; the SMSC re-sends and the second try is acknowledged.
    answers = iter([Ack.RETRY, Ack.OK])
    events = EventRecorder(ack=lambda _item: next(answers))
    async with HappySMSC() as smsc, running_link(smsc.port, events=events) as (link, ev):
        await link.submit(sms())
        await smsc.wait_until(lambda: len(smsc.stats.deliver_responses) == 2)
        assert smsc.stats.deliver_responses == [("report", 0x64), ("report", 0)]
        assert ev.calls == 2 and len(ev.reports) == 1


async def test_a_failing_handler_is_answered_with_a_temporary_error() -> None:
    # An exception in the gateway's handler must not ack the MO: the SMSC keeps it and retries.
    calls: list[InboundSms | DeliveryReport] = []

    def ack(item: InboundSms | DeliveryReport) -> Ack:
        calls.append(item)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return Ack.OK

    async with HappySMSC() as smsc, running_link(smsc.port, events=EventRecorder(ack=ack)) as (_, ev):
        await smsc.inject_mo(PHONE, ME, "yes")
        await smsc.wait_until(lambda: len(smsc.stats.deliver_responses) == 2)
        assert smsc.stats.deliver_responses == [("mo", 0x64), ("mo", 0)]
        assert [m.text for m in ev.delivered] == ["yes"]


# --- MO ---------------------------------------------------------------------------------------------


async def test_plain_mo_is_handed_up() -> None:
    # A reply from a phone arrives with E.164 addresses and its text.
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        assert await smsc.inject_mo(PHONE, ME, "Yes, 10:00 is fine") == 1
        await ev.wait_until(lambda: bool(ev.delivered))
        mo = ev.delivered[0]
        assert (mo.source, mo.destination, mo.text, mo.concat) == (PHONE, ME, "Yes, 10:00 is fine", None)


async def test_mo_in_the_same_read_as_the_bind_resp_is_served() -> None:
    # An SMSC with MOs waiting sends the first deliver_sm right behind bind_transceiver_resp; it must
    # reach the handler and be acknowledged, not refused as "not bound" (ESME_RINVBNDSTS).
    async with (
        EagerMoSMSC(PHONE, ME, "queued while you were away") as smsc,
        running_link(smsc.port) as (_, ev),
    ):
        await ev.wait_until(lambda: bool(ev.delivered))
        await smsc.wait_until(lambda: bool(smsc.stats.deliver_responses or smsc.stats.nacks))
        assert [m.text for m in ev.delivered] == ["queued while you were away"]
        assert smsc.stats.deliver_responses == [("mo", 0)] and smsc.stats.nacks == []


async def test_an_mo_ack_counts_once_the_smsc_answered_an_enquire_link_written_after_it() -> None:
    # The deliver_sm_resp is followed by an enquire_link; its answer tells that the SMSC read the
    # resp (it reads the connection in order), and the MO's acknowledgement is reported confirmed.
    async with HappySMSC() as smsc, running_link(smsc.port, enquire_link_seconds=300) as (_, ev):
        await smsc.inject_mo(PHONE, ME, "yes")
        await ev.wait_until(lambda: bool(ev.acked))
        assert ev.acked == [("yes", True)] and smsc.stats.commands["enquire_link"] == 1


async def test_an_mo_ack_whose_connection_ends_before_any_answer_is_unconfirmed() -> None:
    # The SMSC takes the deliver_sm_resp but the connection dies before it answers the enquire_link
    # after it: the resp may never have reached the SMSC, which may deliver the MO again.
    async with DeafSMSC() as smsc, running_link(smsc.port, enquire_link_seconds=300) as (link, ev):
        await smsc.inject_mo(PHONE, ME, "yes")
        await smsc.wait_until(lambda: smsc.stats.commands["ignored"] == 1)  # the enquire_link after the resp
        assert ev.acked == [] and smsc.stats.deliver_responses == [("mo", 0)]
        smsc.drop_all()
        await ev.wait_until(lambda: bool(ev.acked))
        assert ev.acked == [("yes", False)]
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        # A clean stop: the SMSC's unbind_resp confirms the acknowledgements written before the unbind.
        await smsc.inject_mo(PHONE, ME, "again")
        await smsc.wait_until(lambda: smsc.stats.commands["ignored"] == 2)
        await link.stop()
        assert ev.acked == [("yes", False), ("again", True)]


async def test_concatenated_mo_arrives_as_numbered_segments() -> None:
    # A long UCS-2 reply comes as several deliver_sm with a concat UDH; each is handed up with it.
    text = "Dziękuję za wiadomość. " * 8
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        await smsc.inject_mo(PHONE, "7155", text)
        await ev.wait_until(lambda: len(ev.delivered) == 3)
        parts = sorted(ev.delivered, key=lambda m: m.concat.seq if m.concat else 0)
        assert {(m.concat.ref, m.concat.total) for m in parts if m.concat} == {(parts[0].concat.ref, 3)}  # type: ignore[union-attr]
        assert "".join(m.text for m in parts) == text
        assert {m.data_coding for m in parts} == {8} and parts[0].destination == "7155"


async def test_an_mo_held_for_the_next_login_keeps_the_segments_asked_for() -> None:
    # The simulator holds an MO while no session is bound; asked for 3 segments, it sent the held
    # one as 2 (its default cut) at the login: a load test's 2-part votes were billed as 3 parts.
    text = "Dziękuję za wiadomość. " * 5
    async with HappySMSC() as smsc:
        assert await smsc.core.inject_mo(PHONE, "7155", text, protocol="smpp", parts=3) == 0  # held
        async with running_link(smsc.port) as (_, ev):
            await ev.wait_until(lambda: len(ev.delivered) == 3)
            assert {m.concat.total for m in ev.delivered if m.concat} == {3}
            parts = sorted(ev.delivered, key=lambda m: m.concat.seq if m.concat else 0)
            assert "".join(m.text for m in parts) == text


async def test_data_sm_mo_with_message_payload() -> None:
    # An MO sent as data_sm with message_payload is handed up and answered with data_sm_resp.
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        smsc.sessions[0].send_pdu(
            "data_sm", source_addr_ton=1, source_addr_npi=1, source_addr="48601123456", dest_addr_ton=3,
            dest_addr_npi=0, destination_addr="7155", esm_class=0, data_coding=0, message_payload=b"STOP",
        )  # fmt: skip
        await ev.wait_until(lambda: bool(ev.delivered))
        await smsc.wait_until(lambda: smsc.stats.commands["data_sm_resp"] == 1)
        assert (ev.delivered[0].source, ev.delivered[0].text) == (PHONE, "STOP")


# --- throttling, black holes, lost connections --------------------------------------------------


async def test_throttling_answers_pause_the_link_then_it_succeeds() -> None:
    # ESME_RTHROTTLED is THROTTLED (not a failure); the link's pacer backs off instead of hammering.
    async with ThrottlingSMSC(accept_per_second=2) as smsc, running_link(smsc.port) as (link, _):
        pacer = LinkPacer(link.stats().window, 1000, 0.05)
        outcomes = [(await paced(pacer, link, sms(f"m{i}"))).outcome for i in range(2)]
        assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
        seen = []
        while (result := await paced(pacer, link, sms("later"))).outcome is not Outcome.ACCEPTED:
            seen.append(result.outcome)
        assert seen and set(seen) == {Outcome.THROTTLED}
        assert link.stats().throttled == len(seen) == smsc.throttled
        # Without the doubling pause a tight retry loop would be refused hundreds of times.
        assert smsc.throttled <= 8


async def test_silent_smsc_gives_unanswered_after_the_response_timeout() -> None:
    # A submit that is never answered resolves UNANSWERED with the grace to wait; the link stays
    # up, and the late answer is given up as None when the connection goes.
    async with SilentSMSC() as smsc, running_link(smsc.port, response_timeout_seconds=0.3) as (link, _):
        result = await link.submit(sms())
        assert result.outcome is Outcome.UNANSWERED and "submit_sm_resp" in (result.error or "")
        assert result.retry_after == 300 and result.late is not None and not result.late.done()
        assert len(smsc.received) == 1 and link.state is LinkState.ACTIVE
        smsc.drop_all()
        assert await asyncio.wait_for(result.late, 5) is None


async def test_a_window_of_unanswered_submits_means_reconnect() -> None:
    # The SMSC answers keep-alives but no submit: after a whole window of response timeouts the
    # session is dropped and made anew (its late answers given up), not kept for good while each
    # place given back puts one more submit on top of those the SMSC still holds.
    async with (
        SilentSMSC() as smsc,
        running_link(smsc.port, response_timeout_seconds=0.2, window=3, enquire_link_seconds=0.05) as (
            link,
            ev,
        ),
    ):
        first = await asyncio.gather(*(link.submit(sms()) for _ in range(2)))
        assert [r.outcome for r in first] == [Outcome.UNANSWERED] * 2
        assert link.state is LinkState.ACTIVE  # two of three: the session is kept for late answers
        third = await link.submit(sms())
        assert third.outcome is Outcome.UNANSWERED
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert LinkState.RECONNECTING in ev.states
        assert [await asyncio.wait_for(r.late, 5) for r in (*first, third) if r.late] == [None] * 3


async def test_without_a_grace_an_unanswered_submit_is_temporary() -> None:
    # late_answer_grace_seconds = 0: the old contract, re-sent after the usual back-off.
    async with (
        SilentSMSC() as smsc,
        running_link(smsc.port, response_timeout_seconds=0.2, late_answer_grace_seconds=0) as (link, _),
    ):
        result = await link.submit(sms())
        assert result.outcome is Outcome.TEMPORARY and result.late is None


async def test_late_submit_resp_resolves_the_late_answer_with_its_message_id() -> None:
    # An answer after the response timeout is not dropped: it carries the id the receipt will name.
    async with (
        LateAnswerSMSC(answer_after=0.5) as smsc,
        running_link(smsc.port, response_timeout_seconds=0.1, late_answer_grace_seconds=10) as (link, ev),
    ):
        result = await link.submit(sms())
        assert result.outcome is Outcome.UNANSWERED and result.late is not None
        late = await asyncio.wait_for(result.late, 5)
        assert late is not None and late.outcome is Outcome.ACCEPTED and late.message_id == "1"
        await ev.wait_until(lambda: len(ev.reports) == 1)
        assert ev.reports[0].message_id == "1"


async def test_late_answer_after_the_grace_is_only_logged() -> None:
    # Past twice the grace the part may already be on its way again: the answer settles nothing.
    async with (
        LateAnswerSMSC(answer_after=0.6) as smsc,
        running_link(smsc.port, response_timeout_seconds=0.1, late_answer_grace_seconds=0.1) as (link, ev),
    ):
        with structlog.testing.capture_logs() as logs:
            result = await link.submit(sms())
            assert result.late is not None and await asyncio.wait_for(result.late, 5) is None
            await ev.wait_until(lambda: len(ev.reports) == 1)  # sent after the answer: the marker
        assert [e["seq"] for e in logs if e["event"] == "smpp.unexpected_submit_resp"] == [2]
        assert link.state is LinkState.ACTIVE


async def test_dropped_connection_fails_in_flight_and_reconnects() -> None:
    # Everything in flight when the SMSC vanishes is TEMPORARY; the link rebinds and sends again.
    async with DisconnectingSMSC(after=2) as smsc, running_link(smsc.port) as (link, ev):
        assert [(await link.submit(sms())).outcome for _ in range(2)] == [Outcome.ACCEPTED] * 2
        in_flight = await asyncio.gather(*(link.submit(sms()) for _ in range(3)))
        assert [r.outcome for r in in_flight] == [Outcome.TEMPORARY] * 3
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert ev.states == [LinkState.CONNECTING, LinkState.ACTIVE, LinkState.RECONNECTING, LinkState.ACTIVE]
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert link.stats().reconnects == 1


def test_a_submit_written_after_the_peer_reset_is_temporary_under_uvloop() -> None:
    # The daemon runs on uvloop, whose closed transport raises on write: a submit written between the
    # peer's reset and the read loop seeing it reached the dispatcher as an internal error, and the
    # part was put on hold until an admin retried it. It is a lost connection: TEMPORARY, then rebind.
    import uvloop

    async def scenario() -> None:
        async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
            assert link._conn is not None
            link._conn.writer.transport.abort()  # the reset
            await asyncio.sleep(0)  # the transport is closed; the read loop has not seen it yet
            assert (await link.submit(sms())).outcome is Outcome.TEMPORARY
            await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
            assert (await link.submit(sms())).outcome is Outcome.ACCEPTED

    uvloop.run(scenario())


async def test_smsc_initiated_unbind_is_answered_and_the_link_rebinds() -> None:
    # smpplib leaves an SMSC's unbind unanswered; we answer unbind_resp, close and bind again.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        await smsc.unbind_all()
        await smsc.wait_until(lambda: smsc.stats.unbind_answered == 1)
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert len(smsc.stats.binds) == 2


async def test_unknown_command_is_nacked_and_the_link_stays() -> None:
    # A request we do not know gets generic_nack ESME_RINVCMDID with its sequence; nothing else changes.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        smsc.send_raw(struct.pack(">IIII", 16, 0x00000999, 0, 77))
        smsc.send_raw(struct.pack(">IIII", 16, 0x00000008, 0, 78))  # cancel_sm: known to SMPP, not to us
        await smsc.wait_until(lambda: len(smsc.stats.nacks) == 2)
        assert smsc.stats.nacks == [(77, 0x03), (78, 0x03)]
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert len(smsc.stats.binds) == 1


async def test_garbage_bytes_do_not_kill_the_link() -> None:
    # An unframeable stream is nacked and dropped; the link reconnects and keeps working.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        smsc.send_raw(b"GET / HTTP/1.1\r\nHost: smsc\r\n\r\n")
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert smsc.stats.nacks[0][1] == 0x02
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert link.stats().extra["bad_pdus"] == "1"


async def test_an_overstated_command_length_ends_the_session_while_the_smsc_keeps_talking() -> None:
    # A PDU claiming 60,000 bytes swallows every later PDU, the SMSC's chatter keeping bytes coming so
    # no keep-alive is due: the session is ended once the PDU stays incomplete for the response timeout.
    async with HappySMSC() as smsc, running_link(smsc.port, response_timeout_seconds=0.3) as (link, ev):
        smsc.send_raw(struct.pack(">IIII", 60_000, 0x00000015, 0, 90))  # enquire_link, "60,000 bytes"

        async def chatter() -> None:
            for seq in range(91, 400):
                smsc.send_raw(struct.pack(">IIII", 16, 0x00000015, 0, seq))
                await asyncio.sleep(0.02)

        talking = asyncio.create_task(chatter())
        try:
            await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2, timeout=3)
        finally:
            talking.cancel()
        assert link.stats().extra["bad_pdus"] == "1"
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED


async def test_generic_nack_fails_the_matching_submit() -> None:
    # A generic_nack with a pending submit's sequence resolves that submit with the nack's status.
    class NackingSMSC(FakeSMSC):
        async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
            session.nack(seq, 0x03)

    async with NackingSMSC() as smsc, running_link(smsc.port) as (link, _):
        result = await link.submit(sms())
        assert result.outcome is Outcome.MALFORMED and "ESME_RINVCMDID" in (result.error or "")


async def test_idle_link_sends_enquire_link_and_answers_the_peers() -> None:
    # After enquire_link_seconds of silence the link pings; the SMSC's own ping is answered.
    async with HappySMSC() as smsc, running_link(smsc.port, enquire_link_seconds=0.1) as (link, _):
        await smsc.wait_until(lambda: smsc.stats.commands["enquire_link"] >= 2)
        smsc.sessions[0].send_pdu("enquire_link")
        await smsc.wait_until(lambda: smsc.stats.commands["enquire_link_resp"] == 1)
        assert link.state is LinkState.ACTIVE and len(smsc.stats.binds) == 1


async def test_unanswered_enquire_link_means_reconnect() -> None:
    # A peer that stops answering keep-alives is treated as gone: the link binds afresh.
    timers = {"enquire_link_seconds": 0.1, "response_timeout_seconds": 0.2}
    async with DeafSMSC() as smsc, running_link(smsc.port, **timers) as (_, ev):
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert smsc.stats.commands["ignored"] >= 1 and len(smsc.stats.binds) >= 2


async def test_deliver_sm_is_answered_only_after_the_handler_and_io_goes_on() -> None:
    # While the gateway is still committing an MO, no deliver_sm_resp goes out, yet submits flow.
    release = asyncio.Event()

    class SlowEvents(EventRecorder):
        async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
            await release.wait()
            return await super().on_deliver(link, sms)

    async with HappySMSC() as smsc, running_link(smsc.port, events=SlowEvents()) as (link, ev):
        await smsc.inject_mo(PHONE, ME, "hold on")
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        await ev.wait_until(lambda: bool(ev.reports))  # the receipt's handler is not held up either
        assert ("mo", 0) not in smsc.stats.deliver_responses
        release.set()
        await smsc.wait_until(lambda: ("mo", 0) in smsc.stats.deliver_responses)
        assert [m.text for m in ev.delivered] == ["hold on"]


async def test_wrong_password_never_goes_active_and_keeps_retrying() -> None:
    # ESME_RINVPASWD is a configuration error: logged, retried at the slow pace, never ACTIVE.
    async with HappySMSC() as smsc, running_link(smsc.port, password="wrong", active=False) as (link, ev):
        await smsc.wait_until(lambda: len(smsc.stats.binds) >= 2)
        assert {b[2] for b in smsc.stats.binds} == {0x0E}
        assert LinkState.ACTIVE not in ev.states and link.state is not LinkState.ACTIVE
        assert (await link.submit(sms())).outcome is Outcome.TEMPORARY


async def test_stop_unbinds_and_later_submits_are_temporary() -> None:
    # stop() waits for in-flight answers, unbinds cleanly and leaves the link STOPPED.
    async with HappySMSC(response_delay=0.1) as smsc, running_link(smsc.port) as (link, ev):
        pending = asyncio.create_task(link.submit(sms()))
        await smsc.wait_for(1)
        await link.stop()
        assert (await pending).outcome is Outcome.ACCEPTED
        assert smsc.stats.commands["unbind"] == 1
        assert link.state is LinkState.STOPPED and ev.states[-1] is LinkState.STOPPED
        assert (await link.submit(sms())).outcome is Outcome.TEMPORARY


async def test_submit_before_the_link_is_up_is_temporary() -> None:
    # Nothing listening: submit answers TEMPORARY at once instead of hanging.
    async with HappySMSC() as smsc:
        port = smsc.port
    async with running_link(port, active=False) as (link, ev):
        assert (await link.submit(sms())).outcome is Outcome.TEMPORARY
        await ev.wait_until(lambda: LinkState.RECONNECTING in ev.states)


# --- pure tables ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(0x00, Outcome.ACCEPTED), (0x58, Outcome.THROTTLED), (0x14, Outcome.THROTTLED),
     (0x08, Outcome.TEMPORARY), (0x64, Outcome.TEMPORARY), (0x01, Outcome.MALFORMED),
     (0x03, Outcome.MALFORMED), (0xC2, Outcome.MALFORMED), (0x0B, Outcome.REJECTED),
     (0x45, Outcome.REJECTED), (0x1234, Outcome.REJECTED)],
)  # fmt: skip
def test_status_table(status: int, outcome: Outcome) -> None:
    # Throttling and queue-full slow us down, system errors retry, everything unknown is permanent.
    assert classify_status(status) is outcome


def test_status_text_names_the_code() -> None:
    # Refusals read as "NAME (0xNN)" in logs and bounces, unknown codes included.
    assert status_text(0x0B) == "ESME_RINVDSTADR (0x0B)"
    assert status_text(0x400) == "UNKNOWN (0x400)"


@pytest.mark.parametrize(
    ("raw", "mode", "receipt", "key"),
    [("000AbC", "as_is", False, "abc"), (b"0042\x00", "as_is", True, "42"), ("1F", "hex_to_dec", False, "31"),
     ("31", "hex_to_dec", True, "31"), ("31", "dec_to_hex", False, "1f"), ("001F", "dec_to_hex", True, "1f"),
     ("xyz", "hex_to_dec", False, "xyz"), ("", "as_is", False, ""), ("000", "as_is", True, "0")],
)  # fmt: skip
def test_message_id_normalisation(raw: str | bytes, mode: str, receipt: bool, key: str) -> None:
    # The conversion applies to the submit_sm_resp side only; both sides lose case and leading zeros.
    assert normalise_message_id(raw, mode, receipt=receipt) == key
