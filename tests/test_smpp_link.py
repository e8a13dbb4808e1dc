"""SmppLink against fake SMSCs over real TCP on loopback: the `smsc.base` contract, SMPP style
(submit_sm, receipts, status tables), and the helpers other test modules import. MO, an SMSC that
does not answer as asked, and the session's life have modules of their own: test_smpp_link_mo.py,
test_smpp_link_unanswered.py, test_smpp_link_session.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

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
from smsc.smpp.link import SmppLink, classify_status, normalise_message_id, source_address, status_text
from tests.fakes.smsc import (
    DlrFirstSMSC,
    EventRecorder,
    HappySMSC,
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
    # source_ton / source_npi from the config win over what a number sender looks like; an
    # alphanumeric sender is TON 5 / NPI 0 whatever they say (`gateway.smppsource`), as the config's
    # check warns of NPI 9 when the config names such a sender.
    async with HappySMSC() as smsc, running_link(smsc.port, source_ton=0, source_npi=9) as (link, _):
        await link.submit(sms(source="+48100200300"))
        await link.submit(sms(source="ACME"))
        got = [(s.source_ton, s.source_npi) for s in smsc.received]
        assert got == [(0, 9), (5, 0)], got
    assert source_address("+48", None, 3) == (1, 3, "48")


async def test_validity_and_no_report_request() -> None:
    # Validity goes relative (the time left on the link's clock), or as absolute UTC when the config
    # asks; want_report=False asks for no receipt and none comes.
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with HappySMSC() as smsc, running_link(smsc.port, validity_format="absolute") as (link, _):
        assert (await link.submit(sms(validity=when))).outcome is Outcome.ACCEPTED
        assert smsc.received[0].validity == "300102030405000+"
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        link.clock = lambda: when.timestamp() - 2 * 86400 - 3 * 3600 - 4 * 60 - 5.9
        assert (await link.submit(sms(validity=when, want_report=False))).outcome is Outcome.ACCEPTED
        assert smsc.received[0].validity == "000002030405000R"
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
