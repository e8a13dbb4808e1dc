"""The struct-based SMPP codec: the same bytes as smpplib for every PDU it covers, lossless round trips,
and a decoder that answers malformed input with a nack status instead of raising."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smpplib import command_codes
from smpplib import smpp as pdus

from gateway.config import SmscSection
from smsc.base import LinkState, OutboundSms
from smsc.smpp.codec import (
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    SUBMIT_SM,
    PduError,
    ShortMessage,
    decode_message_id,
    decode_sm,
    encode,
    encode_sm,
    generic_nack,
)
from smsc.smpp.link import SmppLink
from smsc.smpp.pdu import delivery_report, inbound_sms, submit_fields
from tests.fakes.smsc import EventRecorder, HappySMSC

SEQ = 0x12345


class _Client:
    """smpplib numbers requests from a client object; ours always hands out SEQ."""

    sequence = SEQ

    def next_sequence(self) -> int:
        return SEQ


def smpplib_bytes(name: str, status: int = 0, **fields: Any) -> bytes:
    pdu = pdus.make_pdu(name, client=_Client(), status=status, **fields)
    pdu.sequence = SEQ
    return bytes(pdu.generate())


def ours(name: str, status: int = 0, **fields: Any) -> bytes:
    return encode(command_codes.commands[name], SEQ, status, **fields)


BASE = dict(service_type="", source_addr_ton=1, source_addr_npi=1, source_addr="48601123456",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="48602000111", esm_class=0,
            protocol_id=0, priority_flag=0, schedule_delivery_time="", validity_period="",
            registered_delivery=1, replace_if_present_flag=0, data_coding=0, sm_default_msg_id=0,
            short_message=b"Hello world")  # fmt: skip
UDH = b"\x05\x00\x03\x2a\x02\x01"
RECEIPT = b"id:7F3A sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 stat:DELIVRD err:000 text:"

# SMPP 3.4 maximum sizes of the C-octet strings, NUL included: longer text is cut to one octet less.
C_OCTET_LIMITS = dict(service_type=6, source_addr=21, destination_addr=21, schedule_delivery_time=17,
                      validity_period=17, receipted_message_id=65)  # fmt: skip
U16 = "ą".encode("utf-16-be")
INTL, ALNUM, SHORT, NATIONAL = (
    dict(source_addr_ton=t, source_addr_npi=n, source_addr=a)
    for t, n, a in ((1, 1, "48601"), (5, 0, "ACME"), (3, 0, "7155"), (2, 1, "601123456"))
)
SAR = dict(sar_msg_ref_num=0xBEEF, sar_total_segments=3, sar_segment_seqnum=2)
RECEIPT_TLVS = dict(receipted_message_id="7F3A", message_state=5, network_error_code=b"\x01\x00\x22")
SM_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "submit gsm international source": ("submit_sm", INTL),
    "submit alphanumeric source": ("submit_sm", ALNUM),
    "submit short code source": ("submit_sm", SHORT),
    "submit national source": ("submit_sm", NATIONAL),
    "submit ucs2": ("submit_sm", dict(data_coding=8, short_message="Zażółć gęślą".encode("utf-16-be"))),
    "submit udh": ("submit_sm", dict(esm_class=0x40, short_message=UDH + b"part one")),
    "submit ucs2 udh": ("submit_sm", dict(esm_class=0x40, data_coding=8, short_message=UDH + U16)),
    "submit empty": ("submit_sm", dict(short_message=b"", registered_delivery=0)),
    "submit 254 octets": ("submit_sm", dict(short_message=bytes(range(254)))),
    "submit validity": ("submit_sm", dict(validity_period="250101120000000+",
                                          schedule_delivery_time="000001000000000R")),
    "submit service type and flags": ("submit_sm", dict(service_type="CMT", protocol_id=0x40, priority_flag=3,
                                                        replace_if_present_flag=1, sm_default_msg_id=7)),
    "submit sar tlvs": ("submit_sm", SAR),
    "submit message_payload": ("submit_sm", dict(short_message=b"", message_payload=b"x" * 600)),
    "submit over-long addresses are cut": ("submit_sm", dict(source_addr="A" * 30,
                                                             destination_addr="9" * 25)),
    "submit fields of exactly their size are cut": ("submit_sm", dict(source_addr="B" * 21,
                                                                      validity_period="1" * 17)),
    "deliver mo gsm": ("deliver_sm", dict(registered_delivery=0, dest_addr_ton=3, dest_addr_npi=0,
                                          destination_addr="7155", short_message=b"STOP")),
    "deliver mo ucs2 udh": ("deliver_sm", dict(esm_class=0x40, data_coding=8,
                                               short_message=UDH + "Dziękuję".encode("utf-16-be"))),
    "deliver mo sar": ("deliver_sm", dict(sar_msg_ref_num=7, sar_total_segments=2, sar_segment_seqnum=1)),
    "deliver mo payload": ("deliver_sm", dict(short_message=b"", message_payload=b"long " * 100)),
    "deliver receipt text": ("deliver_sm", dict(esm_class=0x04, short_message=RECEIPT)),
    "deliver receipt tlvs": ("deliver_sm", dict(esm_class=0x04, short_message=RECEIPT, **RECEIPT_TLVS)),
    "deliver receipt tlvs only": ("deliver_sm", dict(esm_class=0x04, short_message=b"",
                                                     receipted_message_id="0012ab", message_state=2)),
    "deliver every tlv": ("deliver_sm", dict(short_message=b"", message_payload=b"\0\1", message_state=0,
                                             network_error_code=b"\3\0\0", receipted_message_id="x" * 64,
                                             **SAR)),
}  # fmt: skip

RESP_CASES: dict[str, tuple[str, int, dict[str, Any]]] = {
    "submit_sm_resp with id": ("submit_sm_resp", 0, dict(message_id="0a1b2c3d")),
    "submit_sm_resp error without id": ("submit_sm_resp", 0x58, {}),
    "submit_sm_resp 64-char id": ("submit_sm_resp", 0, dict(message_id="9" * 64)),
    "deliver_sm_resp": ("deliver_sm_resp", 0, {}),
    "deliver_sm_resp refused": ("deliver_sm_resp", 0x64, {}),
    "data_sm_resp": ("data_sm_resp", 0, {}),
    "enquire_link": ("enquire_link", 0, {}),
    "enquire_link_resp": ("enquire_link_resp", 0, {}),
    "unbind": ("unbind", 0, {}),
    "unbind_resp": ("unbind_resp", 0, {}),
    "generic_nack": ("generic_nack", 0x03, {}),
}


@pytest.mark.parametrize("case", SM_CASES)
def test_submit_and_deliver_bytes_equal_smpplib(case: str) -> None:
    # Every submit_sm/deliver_sm in the table encodes to exactly smpplib's bytes.
    name, changes = SM_CASES[case]
    fields = BASE | changes
    assert ours(name, **fields) == smpplib_bytes(name, **fields)


@pytest.mark.parametrize("case", RESP_CASES)
def test_responses_and_header_only_pdus_equal_smpplib(case: str) -> None:
    # Responses, enquire_link, unbind and generic_nack encode to exactly smpplib's bytes.
    name, status, fields = RESP_CASES[case]
    assert ours(name, status, **fields) == smpplib_bytes(name, status, **fields)


def test_generic_nack_helper_is_the_header() -> None:
    # generic_nack(seq, status) is the 16-octet header smpplib would send.
    assert generic_nack(SEQ, 0x03) == smpplib_bytes("generic_nack", 0x03)


def test_submit_fields_of_a_real_part_equal_smpplib() -> None:
    # What the link sends for a concatenated UCS-2 part with validity is smpplib's submit_sm.
    cfg = SmscSection(name="op", type="smpp", port=2775, system_id="smsgw")
    part = OutboundSms(part_id=1, source="ACME", destination="+48601123456", data_coding=8,
                       payload="ą".encode("utf-16-be"), text="ą", udh=UDH,
                       validity=datetime(2025, 1, 1, 12, tzinfo=UTC))  # fmt: skip
    fields = submit_fields(part, cfg.driver_settings())
    assert encode_sm(SUBMIT_SM, SEQ, **fields) == smpplib_bytes("submit_sm", **fields)


@pytest.mark.parametrize("case", SM_CASES)
def test_decode_reads_back_what_was_encoded_and_what_smpplib_reads(case: str) -> None:
    # Decoding gives back every field given (strings cut to their SMPP size) and agrees with smpplib.
    name, changes = SM_CASES[case]
    fields = BASE | changes
    raw = ours(name, **fields)
    msg = decode_sm(raw)
    assert isinstance(msg, ShortMessage)
    theirs = pdus.parse_pdu(raw, client=_Client(), allow_unknown_opt_params=True)
    for key, value in fields.items():
        mine, other = getattr(msg, key), getattr(theirs, key)
        if isinstance(mine, str):
            assert mine.encode("latin-1") == other, key
            assert mine == value[: C_OCTET_LIMITS[key] - 1], key
        elif key == "short_message":  # smpplib leaves an empty one at the end of the body as None
            assert mine == (other or b"") == value
        else:
            assert mine == other == value, key
    assert (msg.receipted_message_id is None) == ("receipted_message_id" not in fields)


def test_resp_message_id_is_read_up_to_its_nul() -> None:
    # The id of a submit_sm_resp; an empty body (error answers) and a missing NUL give what is there.
    assert decode_message_id(ours("submit_sm_resp", message_id="0a1b")) == "0a1b"
    assert decode_message_id(bytes(16)) == ""
    assert decode_message_id(bytes(16) + b"abc") == "abc"


def test_decoded_receipt_and_mo_feed_the_readers() -> None:
    # smpp_pdu's readers take the codec's ShortMessage as they took smpplib's PDU objects.
    receipt = decode_sm(ours("deliver_sm", **BASE | SM_CASES["deliver receipt tlvs"][1]))
    assert isinstance(receipt, ShortMessage)
    report = delivery_report(receipt, receipt.short_message, "as_is")
    assert report is not None and report.message_id == "7f3a" and report.destination == "+48601123456"
    assert report.error is not None and "net:1:34" in report.error
    mo = decode_sm(ours("deliver_sm", **BASE | SM_CASES["deliver mo sar"][1]))
    assert isinstance(mo, ShortMessage)
    sms = inbound_sms(mo, mo.short_message, mo.esm_class)
    assert sms.concat is not None and (sms.concat.ref, sms.concat.total, sms.concat.seq) == (7, 2, 1)
    past_the_end = dict(sar_msg_ref_num=7, sar_total_segments=2, sar_segment_seqnum=3)
    beyond = decode_sm(ours("deliver_sm", **BASE | past_the_end))
    assert isinstance(beyond, ShortMessage)
    # Part 3 of 2 would wait for a set that never completes: the text is taken as it is, as with a UDH.
    assert inbound_sms(beyond, beyond.short_message, beyond.esm_class).concat is None


# --- malformed input -----------------------------------------------------------------------------

VALID = ours("deliver_sm", **BASE | SM_CASES["deliver receipt tlvs"][1])
BODY_END = len(ours("deliver_sm", **BASE | SM_CASES["deliver receipt text"][1]))


def _tlv(tag: int, value: bytes) -> bytes:
    return tag.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (VALID[:16], ESME_RINVCMDLEN),  # no body at all
        (VALID[:30], ESME_RINVCMDLEN),  # ends inside the addresses
        (VALID[:16] + b"CMT", ESME_RINVCMDLEN),  # service_type without its NUL
        (VALID[: BODY_END - 40], ESME_RINVMSGLEN),  # sm_length says more than there is
        (VALID[:BODY_END] + b"\x00\x1e\x00", ESME_RINVOPTPARSTREAM),  # TLV header cut short
        (VALID[:BODY_END] + b"\x04\x27\x00\x05\x02", ESME_RINVOPTPARSTREAM),  # TLV value cut short
    ],
)
def test_malformed_pdus_come_back_as_errors_with_a_nack_status(raw: bytes, status: int) -> None:
    # Each way a body can be broken is reported with the SMPP status that names it.
    result = decode_sm(raw)
    assert isinstance(result, PduError) and result.status == status and result.reason


def test_known_tlvs_of_a_wrong_length_are_skipped_and_the_rest_is_read() -> None:
    # message_state in 2 octets, sar_msg_ref_num in 1, network_error_code in 2: each is left out
    # (None) and the PDU is read, its text included, instead of refused with a nack.
    raw = (
        VALID[:BODY_END]
        + _tlv(0x0427, b"\x00\x02")
        + _tlv(0x020C, b"\x07")
        + _tlv(0x0423, b"\x03\x00")
        + _tlv(0x001E, b"ABC\x00")
    )
    msg = decode_sm(raw)
    assert isinstance(msg, ShortMessage)
    assert (msg.message_state, msg.sar_msg_ref_num, msg.network_error_code) == (None, None, None)
    assert msg.receipted_message_id == "ABC" and msg.short_message


def test_unknown_tlvs_are_skipped_and_an_id_without_nul_is_kept() -> None:
    # Unknown tags (vendor 0x1400) are skipped; a receipted_message_id without its NUL loses nothing.
    raw = VALID[:BODY_END] + _tlv(0x1400, b"vendor") + _tlv(0x001E, b"ABC") + _tlv(0x0427, b"\x02")
    msg = decode_sm(raw)
    assert isinstance(msg, ShortMessage)
    assert (msg.receipted_message_id, msg.message_state, msg.network_error_code) == ("ABC", 2, None)


@pytest.mark.parametrize(
    ("name", "fields", "error"),
    [
        ("submit_sm", dict(short_message=b"x" * 255), ValueError),
        ("submit_sm", dict(short_message=b"x", message_payload=b"y"), ValueError),
        ("submit_sm", dict(source_addr="Zażółć"), UnicodeError),
        ("submit_sm", dict(data_coding=256), ValueError),
        ("submit_sm", dict(receipted_message_id="1"), ValueError),
        ("submit_sm", dict(source_port=80), ValueError),
        ("bind_transceiver", dict(system_id="smsgw"), ValueError),
    ],
)
def test_what_smpp_cannot_carry_is_refused(name: str, fields: dict[str, Any], error: type[Exception]) -> None:
    # Encoding refuses rather than send something SMPP 3.4 forbids or this codec does not cover.
    with pytest.raises(error):
        ours(name, **fields)


# --- properties ----------------------------------------------------------------------------------


def _cstr(max_size: int, max_codepoint: int = 255) -> st.SearchStrategy[str]:
    """Text that fits a C-octet string field (no NUL inside)."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=max_codepoint), max_size=max_size)


_octet = st.integers(0, 255)
_sm_fields = st.fixed_dictionaries(
    {
        "service_type": _cstr(5),
        "source_addr_ton": _octet, "source_addr_npi": _octet, "source_addr": _cstr(20),
        "dest_addr_ton": _octet, "dest_addr_npi": _octet, "destination_addr": _cstr(20),
        "esm_class": _octet, "protocol_id": _octet, "priority_flag": _octet,
        "schedule_delivery_time": _cstr(16), "validity_period": _cstr(16),
        "registered_delivery": _octet, "replace_if_present_flag": _octet, "data_coding": _octet,
        "sm_default_msg_id": _octet, "short_message": st.binary(max_size=254),
    },
    optional={
        "sar_msg_ref_num": st.integers(0, 0xFFFF), "sar_total_segments": _octet,
        "sar_segment_seqnum": _octet, "message_state": _octet,
        "network_error_code": st.binary(min_size=3, max_size=3),
        # ASCII: smpplib writes this one TLV as UTF-8, SMPP's C-octet strings are single octets.
        "receipted_message_id": _cstr(64, max_codepoint=127).filter(bool),
    },
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(_sm_fields)
def test_any_deliver_sm_round_trips_and_equals_smpplib(fields: dict[str, Any]) -> None:
    # Whatever fits SMPP's limits encodes like smpplib and decodes back to the same fields.
    raw = ours("deliver_sm", **fields)
    assert raw == smpplib_bytes("deliver_sm", **fields)
    msg = decode_sm(raw)
    assert isinstance(msg, ShortMessage)
    assert {k: getattr(msg, k) for k in fields} == fields


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_make_the_decoder_raise(raw: bytes) -> None:
    # Arbitrary bytes give a ShortMessage or a PduError, never an exception.
    assert isinstance(decode_sm(raw), ShortMessage | PduError)
    assert isinstance(decode_message_id(raw), str)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(VALID)), st.binary(max_size=40), st.integers(0, len(VALID)))
def test_damaged_pdus_never_make_the_decoder_raise(cut: int, noise: bytes, at: int) -> None:
    # A valid receipt truncated anywhere and with random bytes spliced in still never raises.
    raw = VALID[:cut]
    raw = raw[:at] + noise + raw[at + len(noise) :]
    assert isinstance(decode_sm(raw), ShortMessage | PduError)


# --- the codec's errors on the wire --------------------------------------------------------------


def _framed(raw: bytes, seq: int) -> bytes:
    """`raw` with its command_length and sequence_number made to match, as a peer would frame it."""
    return len(raw).to_bytes(4, "big") + raw[4:12] + seq.to_bytes(4, "big") + raw[16:]


async def test_link_nacks_a_broken_deliver_sm_with_the_codecs_status() -> None:
    # A deliver_sm whose sm_length overruns the PDU is counted and answered generic_nack 0x01, not handed up.
    async with HappySMSC() as smsc:
        cfg = SmscSection(name="op", type="smpp", port=smsc.port, system_id="smsgw")
        link, ev = SmppLink(cfg.driver_settings(), password="secret"), EventRecorder()
        await link.start(ev)
        try:
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            smsc.send_raw(_framed(VALID[: BODY_END - 40], 91))
            await smsc.wait_until(lambda: smsc.stats.nacks == [(91, ESME_RINVMSGLEN)])
            assert link.stats().extra["bad_pdus"] == "1" and ev.delivered == ev.reports == []
        finally:
            await link.stop()


async def test_simulator_nacks_a_broken_submit_sm_with_the_codecs_status() -> None:
    # A submit_sm with a TLV cut short gets generic_nack 0xC0 with its sequence; the session goes on.
    async with HappySMSC() as smsc:
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        try:
            writer.write(smpplib_bytes("bind_transceiver", system_id="smsgw", password="secret"))
            head = await asyncio.wait_for(reader.readexactly(16), 5)
            await reader.readexactly(int.from_bytes(head[:4], "big") - 16)
            writer.write(_framed(ours("submit_sm", **BASE) + b"\x04\x24\x00\x09abc", 17))
            nack = await asyncio.wait_for(reader.readexactly(16), 5)
            assert nack == generic_nack(17, ESME_RINVOPTPARSTREAM) and smsc.received == []
            writer.write(encode(ENQUIRE_LINK, 18))
            assert await asyncio.wait_for(reader.readexactly(16), 5) == encode(ENQUIRE_LINK_RESP, 18)
        finally:
            writer.close()
            await writer.wait_closed()
