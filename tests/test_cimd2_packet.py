"""The CIMD2 codec: framing, checksum, tables, character set and a parser that survives any bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsc.base import ReportStatus
from smsc.cimd2.codes import FATAL_LOGIN_ERRORS, STATUS_CODES, error_text
from smsc.cimd2.packet import (
    GSM_BASIC,
    GSM_EXTENSION,
    Cimd2Parser,
    Op,
    P,
    Packet,
    address_digits,
    checksum,
    cimd_decode,
    cimd_encode,
    encode,
    parse_frame,
    septets_to_cimd,
    text_to_septets,
)
from smsc.cimd2.times import VALIDITY_SLACK_SECONDS, parse_time, validity_code, validity_seconds


def wire(text: str) -> bytes:
    return text.replace("<STX>", "\x02").replace("<TAB>", "\t").replace("<ETX>", "\x03").encode("latin-1")


# One packet for every operation we send or receive, with realistic parameters.
SAMPLES = [
    Packet.make(Op.LOGIN, 1, (P.USER_IDENTITY, "foo"), (P.PASSWORD, "bar")),
    Packet.make(Op.LOGOUT, 7),
    Packet.make(
        Op.SUBMIT,
        3,
        (P.DESTINATION, "+358401234567"),
        (P.ORIGINATOR, "12345"),
        (P.STATUS_REPORT_REQUEST, 14),
        (P.UDH, "050003A10201"),
        (P.USER_DATA, "Hello _Oa world"),
    ),
    Packet.make(
        Op.SUBMIT, 5, (P.DESTINATION, "+48601"), (P.ALPHA_ORIGINATOR, "ACME"), (34, "005A0061"), (30, 8)
    ),
    Packet.make(Op.ALIVE, 5),
    Packet.make(Op.LOGIN_RESP, 1),
    Packet.make(Op.LOGIN_RESP, 1, (P.ERROR_CODE, 100), (P.ERROR_TEXT, "invalid login")),
    Packet.make(Op.LOGOUT_RESP, 7),
    Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+358401234567"), (P.SCTS, "261121045622")),
    Packet.make(Op.ALIVE_RESP, 5),
    Packet.make(
        Op.DELIVER,
        0,
        (P.DESTINATION, "7155"),
        (P.ORIGINATOR, "+48601123456"),
        (P.SCTS, "261121045622"),
        (P.USER_DATA, "h\xe9llo \x80\xff\x1b\r"),
    ),
    Packet.make(Op.DELIVER_RESP, 0),
    Packet.make(
        Op.STATUS_REPORT,
        2,
        (P.DESTINATION, "+48601"),
        (P.SCTS, "261121045622"),
        (P.STATUS_CODE, 4),
        (P.STATUS_ERROR_CODE, 0),
        (P.DISCHARGE_TIME, "261121045630"),
    ),
    Packet.make(Op.STATUS_REPORT_RESP, 2),
    Packet.make(Op.GENERAL_ERROR, 9, (P.ERROR_CODE, 1), (P.ERROR_TEXT, "unexpected operation")),
    Packet.make(Op.NACK, 11),
]


@pytest.mark.parametrize("packet", SAMPLES, ids=lambda p: f"{p.op:02d}")
def test_every_operation_round_trips(packet: Packet) -> None:
    # What we encode, the parser gives back identically, with a verified checksum.
    [back] = Cimd2Parser().feed(encode(packet))
    assert (back.op, back.number, back.params) == (packet.op, packet.number, packet.params)
    assert back.checksum_ok is True and back.errors == []


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("<STX>01:001<TAB>010:foo<TAB>011:bar<TAB>", 0x59),
        ("<STX>40:005<TAB>", 0x3E),
        ("<STX>51:001<TAB>", 0x3C),
    ],
)
def test_checksum_examples_from_the_brief(frame: str, expected: int) -> None:
    # The three checksums observed on the wire (protocols.md 1.3).
    assert checksum(wire(frame)) == expected


@pytest.mark.parametrize(
    "line",
    [
        "<STX>01:001<TAB>010:foo<TAB>011:bar<TAB>59<ETX>",
        "<STX>51:001<TAB>3C<ETX>",
        "<STX>03:003<TAB>021:+358401234567<TAB>023:12345<TAB>033:Hello _Oa world<TAB>056:14<TAB>055:0<TAB>"
        "044:0<TAB>22<ETX>",
        "<STX>53:003<TAB>021:+358401234567<TAB>060:261121045622<TAB>EA<ETX>",
        "<STX>40:005<TAB>3E<ETX>",
        "<STX>90:005<TAB>43<ETX>",
        "<STX>02:007<TAB>3E<ETX>",
        "<STX>52:007<TAB>43<ETX>",
        "<STX>51:001<TAB>900:100<TAB>901:invalid login<TAB>A6<ETX>",
    ],
)
def test_wire_examples_parse_and_reencode_byte_for_byte(line: str) -> None:
    # The session seen against test_cimd2 (protocols.md 1.8) parses cleanly and re-encodes identically.
    [packet] = Cimd2Parser().feed(wire(line))
    assert packet.checksum_ok is True and packet.errors == []
    assert encode(packet) == wire(line)


def test_missing_checksum_is_valid_and_lowercase_checksum_accepted() -> None:
    # The checksum is optional; the simulator's lowercase hex must not count as a mismatch.
    parser = Cimd2Parser()
    a, b = parser.feed(wire("<STX>51:001<TAB><ETX><STX>51:001<TAB>3c<ETX>"))
    assert a.checksum_ok is None and b.checksum_ok is True
    assert parser.checksum_errors == 0 and parser.errors == 0


def test_checksum_mismatch_is_counted_and_packet_still_returned() -> None:
    # Kannel never checks; we check, count, and still hand the packet over with a flag.
    parser = Cimd2Parser()
    [packet] = parser.feed(wire("<STX>53:003<TAB>021:+48601<TAB>060:261121045622<TAB>00<ETX>"))
    assert packet.checksum_ok is False and packet.get(P.SCTS) == "261121045622"
    assert parser.checksum_errors == 1


def test_parser_resynchronises_on_a_second_stx_and_skips_leading_garbage() -> None:
    # A frame that lost its ETX is abandoned at the next STX (the spew case seen against test_cimd2).
    parser = Cimd2Parser()
    packets = parser.feed(b"junk\x03\x02\x02garbage\x02" + encode(Packet.make(Op.LOGIN_RESP, 1)) + b"tail")
    assert [(p.op, p.number) for p in packets] == [(51, 1)]
    assert parser.errors >= 1 and parser.discarded_bytes > 0


def test_parser_gives_up_on_a_frame_longer_than_the_cap_and_recovers() -> None:
    # 4096 bytes without ETX are dropped; the next good packet still comes through.
    parser = Cimd2Parser()
    assert parser.feed(b"\x02" + b"A" * 5000) == []
    assert parser.errors == 1
    assert parser.feed(b"B" * 100 + encode(Packet.make(Op.ALIVE, 2)))[0].op == Op.ALIVE


def test_parser_reassembles_packets_split_at_every_byte() -> None:
    # TCP may cut anywhere: one byte at a time still yields every packet once.
    stream = b"".join(encode(p) for p in SAMPLES)
    parser = Cimd2Parser()
    out = [packet for i in range(len(stream)) for packet in parser.feed(stream[i : i + 1])]
    assert [(p.op, p.params) for p in out] == [(p.op, p.params) for p in SAMPLES]


def test_unusable_header_is_dropped_and_counted_but_bad_parameters_are_noted() -> None:
    # A header we cannot read drops the frame; a broken parameter only marks the packet.
    parser = Cimd2Parser()
    bad_header = "<STX>5x:001<TAB><ETX>"
    packets = parser.feed(wire(bad_header + "<STX>20:002<TAB>021<TAB>023:12<TAB>060:2611<TAB>zz<ETX>"))
    [packet] = packets
    assert packet.op == 20 and packet.get(P.ORIGINATOR) == "12"
    assert any("bad parameter" in e for e in packet.errors) and any("060" in e for e in packet.errors)
    assert any("junk" in e for e in packet.errors)
    assert parser.errors == 2


def test_last_parameter_without_tab_is_kept() -> None:
    # A sloppy peer that forgets the final TAB loses nothing.
    packet = parse_frame(b"\x0253:003\t021:123\t060:261121045622")
    assert packet is not None and packet.get(P.SCTS) == "261121045622" and packet.errors


def test_overlong_values_are_flagged() -> None:
    # Values over the table's maximum are noted (validation counts, never kills).
    packet = parse_frame(wire("<STX>20:000<TAB>021:" + "1" * 25 + "<TAB>"))
    assert packet is not None and any("at most 20" in e for e in packet.errors)


def test_encode_refuses_values_that_would_break_framing() -> None:
    # A TAB or an ETX in a value would corrupt the stream; that is our bug and must surface.
    for bad in ("a\tb", "a\x03", "a\x02", "\x00"):
        with pytest.raises(ValueError):
            encode(Packet.make(Op.SUBMIT, 1, (P.USER_DATA, bad)))
    with pytest.raises(ValueError):
        encode(Packet.make(Op.SUBMIT, 1, (P.USER_DATA, "€")))


def test_describe_never_shows_the_password() -> None:
    # Logs carry packet summaries; the password must be masked.
    text = Packet.make(Op.LOGIN, 1, (P.USER_IDENTITY, "foo"), (P.PASSWORD, "s3cret")).describe()
    assert "s3cret" not in text and "foo" in text


def test_describe_shows_no_number_nor_text() -> None:
    # A stray or faulty packet is logged by its summary: an MO's phone, our sender and the text stay out.
    packet = Packet.make(
        Op.DELIVER, 7, (P.DESTINATION, "4860"), (P.ORIGINATOR, "+48601234567"),
        (P.ALPHA_ORIGINATOR, "Anna"), (P.USER_DATA, "meet at 5"), (P.SCTS, "261204031500"),
    )  # fmt: skip
    text = packet.describe()
    assert not any(secret in text for secret in ("4860", "601234567", "Anna", "meet")), text
    assert "021=<4 chars>" in text and "023=<12 chars>" in text and "060='261204031500'" in text


@pytest.mark.parametrize(
    ("text", "cimd"),
    [
        ("@£$¥", "_Oa_L-$_Y-"),
        ("èéùìò", "_e`_e'_u`_i`_o`"),
        ('ÇØøÅåΔ_"¤¡', "_C,_O/_o/_A*_a*_gd_--_qq_ox_!!"),
        ("ΦΓΛΩΠΨΣΘΞ", "_gf_gg_gl_go_gp_gi_gs_gt_gx"),
        ("ÆæßÉÄÖÑÜ§¿äöñüà", '_AE_ae_ss_E\'_A"_O"_N~_U"_so_??_a"_o"_n~_u"_a`'),
        ("€{}[]~\\^|", "_XXe_XX(_XX)_XX<_XX>_XX=_XX/_XX_gl_XX_!!"),
        ("\f", "_XX\n"),
        ("Hello, World! 0-9 (a+b)=c?\r\n", "Hello, World! 0-9 (a+b)=c?\r\n"),
    ],
)
def test_cimd_character_table(text: str, cimd: str) -> None:
    # Kannel's table: GSM code → ASCII or a `_xy` combination; extensions behind `_XX`.
    assert cimd_encode(text) == cimd
    assert cimd_decode(cimd) == text


def test_c_cedilla_is_sent_as_the_gsm_capital() -> None:
    # ç has no own GSM code; it travels as 0x09 like Kannel sends it.
    assert text_to_septets("ç") == b"\x09" and cimd_encode("ç") == "_C,"


def test_receive_rules_for_plain_bytes() -> None:
    # Kannel's receive rules: ] → Å, } → å, [ → Ä, @ and $ as themselves, ≥0x80 as Latin-1, unknown _xy kept.
    assert cimd_decode("]}[{@$") == "ÅåÄä@$"
    assert cimd_decode("caf\xe9 \xa3") == "café £"
    assert cimd_decode("_zz and _") == "_zz and _"
    assert cimd_decode("end\x1b") == "end"  # a lone trailing escape is dropped


def test_unencodable_text_raises() -> None:
    # Polish letters have no GSM code: the caller must choose UCS-2 instead.
    with pytest.raises(ValueError, match="ł"):
        cimd_encode("łódź")
    with pytest.raises(ValueError):
        septets_to_cimd(b"\x80")


GSM_CHARS = [c for c in GSM_BASIC if c != "\x1b"] + list(GSM_EXTENSION.values())
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS))


@given(gsm_text)
def test_cimd_text_round_trips(text: str) -> None:
    # Every GSM-encodable text survives encode → decode unchanged, and the wire form is plain ASCII.
    wire_text = cimd_encode(text)
    assert wire_text.isascii() and not any(ch in wire_text for ch in "\x00\x02\x03\t")
    assert cimd_decode(wire_text) == text


@given(st.text(alphabet=st.characters(max_codepoint=0xFF)))
def test_cimd_decode_never_raises(value: str) -> None:
    # Whatever bytes the SMSC puts in 033 (the simulator sends random ones), decoding yields text.
    assert isinstance(cimd_decode(value), str)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=600), max_size=8))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    # Any byte stream, cut anywhere, is consumed without an exception.
    parser = Cimd2Parser(max_packet=512)
    for chunk in chunks:
        for packet in parser.feed(chunk):
            assert 0 <= packet.op <= 99 and 0 <= packet.number <= 999


@settings(max_examples=300)
@given(st.binary(max_size=300), st.sampled_from(SAMPLES), st.binary(max_size=300), st.integers(1, 64))
def test_valid_packet_embedded_in_noise_is_recovered(
    before: bytes, packet: Packet, after: bytes, chunk: int
) -> None:
    # Whatever garbage surrounds it, a well-formed packet comes out of the parser intact.
    stream = before + encode(packet) + after
    parser = Cimd2Parser()
    out = [p for i in range(0, len(stream), chunk) for p in parser.feed(stream[i : i + chunk])]
    assert any(p.op == packet.op and p.params == packet.params and p.checksum_ok for p in out)


@settings(max_examples=200)
@given(st.integers(1, 700))
def test_an_over_long_packet_is_dropped_however_tcp_splits_it(chunk: int) -> None:
    # Taken whole when it came in one read but dropped when split before its ETX, a 600-byte packet
    # (limit 512) was a matter of TCP segmentation; now dropped always, the next packet always kept.
    long = encode(Packet.make(Op.DELIVER, 5, (P.USER_DATA, "x" * 600)))
    stream = long + encode(SAMPLES[0])
    parser = Cimd2Parser(max_packet=512)
    out = [p for i in range(0, len(stream), chunk) for p in parser.feed(stream[i : i + chunk])]
    assert [(p.op, p.params) for p in out] == [(SAMPLES[0].op, SAMPLES[0].params)]
    assert parser.errors == 1


def test_error_and_status_tables() -> None:
    # The tables the link maps outcomes from.
    assert error_text(300) == "incorrect destination address" and error_text(777) == "error 777"
    assert {100, 101, 103, 106, 107, 108} == FATAL_LOGIN_ERRORS and 102 not in FATAL_LOGIN_ERRORS
    assert STATUS_CODES[4][1] is ReportStatus.DELIVERED
    assert {c for c, (_, s) in STATUS_CODES.items() if s is ReportStatus.FAILED} == {2, 3, 6, 7, 8, 9}
    assert {c for c, (_, s) in STATUS_CODES.items() if s is ReportStatus.PENDING} == {1, 5}


def test_times_validity_and_addresses() -> None:
    # yymmddhhmmss in UTC; GSM 03.40 relative validity; digits-only destinations for DLR keys.
    assert parse_time("261121045622") == datetime(2026, 11, 21, 4, 56, 22, tzinfo=UTC)
    assert parse_time("261321045622") is None and parse_time("") is None and parse_time(None) is None
    assert [validity_seconds(c) for c in (0, 143, 144, 167, 168, 196, 197, 255)] == [
        300, 43200, 45000, 86400, 2 * 86400, 30 * 86400, 5 * 7 * 86400, 63 * 7 * 86400,
    ]  # fmt: skip
    assert validity_code(86400) == 167 and validity_code(60) == 0 and validity_code(10**9) == 255
    assert address_digits("+358-40 123") == "35840123"


@pytest.mark.parametrize("hours", [1, 12, 24, 48, 72, 168, 720])
def test_validity_code_covers_a_period_a_few_seconds_short(hours: int) -> None:
    # The dispatcher passes the part's expiry, so the time left is a few seconds short of the
    # configured hours when the part is sent: the code must still give the whole period, not a step less.
    assert validity_seconds(validity_code(hours * 3600 - 2)) == hours * 3600


@given(st.floats(min_value=-3600, max_value=64 * 7 * 86400))
def test_validity_code_is_the_longest_code_that_ends_by_the_part_expiry(seconds: float) -> None:
    # Never past the mail's expiry (bar the slack for a part sent a few seconds after its hours began),
    # nor a step shorter than needed; code 0 (5 min) when less than that is left.
    code = validity_code(seconds)
    assert code == 0 or validity_seconds(code) <= seconds + VALIDITY_SLACK_SECONDS
    assert code == 255 or validity_seconds(code + 1) > seconds + VALIDITY_SLACK_SECONDS
