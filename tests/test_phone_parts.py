"""The parts a phone's split needed for a text an SMSC delivered joined, with no concatenation
(`smsc.decoding.phone_parts`): what the operator charged the phone, and so what a premium vote is
billed at. At each alphabet's limits (protocols.md 3.2), with GSM extension characters at two septets,
and octets that are no text counted as the octets their rendering stands for."""

from __future__ import annotations

import pytest

from smsc.cimd2.messages import unreadable_text
from smsc.decoding import damaged_text, decode_user_data, octets_text, phone_parts

GSM, LATIN1, BINARY, UCS2 = 0, 3, 4, 8


@pytest.mark.parametrize(
    ("length", "parts"), [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm_text_is_one_part_to_160_septets_then_153_a_part(length: int, parts: int) -> None:
    assert phone_parts("a" * length, GSM) == parts


def test_an_extension_character_is_two_septets() -> None:
    assert phone_parts("€" * 80, GSM) == 1  # 160 septets
    assert phone_parts("€" * 80 + "a", GSM) == 2
    assert phone_parts("a" * 159 + "[", GSM) == 2  # 161 septets in 160 characters
    assert phone_parts("a" * 158 + "[", GSM) == 1
    assert phone_parts("{}" * 76 + "a", GSM) == 2  # 305 septets
    assert phone_parts("{}" * 77, GSM) == 3  # 308
    assert phone_parts("ç" * 161, GSM) == 2  # ç is Ç's code: one septet


@pytest.mark.parametrize(("text", "parts"), [("ż" * 70, 1), ("ż" * 71, 2), ("ż" * 134, 2), ("ż" * 135, 3)])
def test_ucs2_is_one_part_to_70_units_then_67_a_part(text: str, parts: int) -> None:
    assert phone_parts(text, UCS2) == parts


def test_ucs2_counts_utf16_units_and_a_gsm_text_sent_as_ucs2_is_ucs2() -> None:
    assert phone_parts("😀" * 35, UCS2) == 1  # 70 units: a surrogate pair each
    assert phone_parts("😀" * 35 + "a", UCS2) == 2
    assert phone_parts("a" * 71, UCS2) == 2  # the DCS says how the phone sent it


@pytest.mark.parametrize(("octets", "parts"), [(140, 1), (141, 2), (268, 2), (269, 3)])
def test_octets_are_one_part_to_140_then_134_a_part(octets: int, parts: int) -> None:
    assert phone_parts("x" * octets, BINARY) == parts
    data = bytes(range(0xF0, 0x100)) * 20
    binary = octets_text(data[:octets])  # no text: its hex is stored
    assert binary.startswith(f"[A binary SMS of {octets} bytes, not text")
    assert phone_parts(binary, BINARY) == parts


def test_octets_that_read_as_utf8_are_counted_as_their_utf8() -> None:
    assert phone_parts("ż" * 70, BINARY) == 1  # 140 octets
    assert phone_parts("ż" * 70 + "a", BINARY) == 2
    assert phone_parts(octets_text(bytes(141)), BINARY) == 2  # all zero


def test_damaged_user_data_counts_as_its_octets_not_as_its_rendering() -> None:
    # A UDH longer than the data: stored as a line saying so and the bytes in hex, 300 characters
    # for 60 bytes, which were one SMS.
    data = bytes((0x70, 0x00, 0x03)) + b"a" * 57
    text, _ = decode_user_data(data, GSM, udhi=True)
    assert text == damaged_text(data) and len(text) > 160
    assert phone_parts(text, GSM) == 1
    assert phone_parts(text, UCS2) == 1  # 30 units
    long = bytes((0xF0, 0x00, 0x03)) + b"a" * 158
    assert phone_parts(decode_user_data(long, GSM, udhi=True)[0], GSM) == 2  # 161 septets


def test_cimd2_034_that_is_no_hex_counts_by_its_length() -> None:
    assert phone_parts(unreadable_text("4B503132330"), UCS2, smpp=False) == 1
    assert phone_parts(unreadable_text("ZZ" * 141), BINARY, smpp=False) == 2  # 141 octets' worth


def test_smpp_character_sets_count_as_the_phone_sent_them() -> None:
    # IA5 and Latin-1 are the SMSC's conversion: the phone sent GSM when every character has a code
    # there, UCS-2 when one has not.
    assert phone_parts("e" * 160, LATIN1) == 1
    assert phone_parts("é" * 160, LATIN1) == 1  # é is GSM
    assert phone_parts("ó" * 70, LATIN1) == 1  # ó is not: UCS-2
    assert phone_parts("ó" * 71, LATIN1) == 2
    assert phone_parts("a" * 161, 1) == 2


def test_cimd2_reads_1_to_3_as_the_gsm_alphabet() -> None:
    # SMPP's 2 is binary (octets); CIMD2's 030 is the DCS, whose 2 is the GSM alphabet.
    assert phone_parts("a" * 150, 2, smpp=False) == 1
    assert phone_parts("a" * 150, 2) == 2
    assert phone_parts("ó" * 150, 3, smpp=False) == 1


def test_a_pair_across_a_part_boundary_takes_a_part_more_as_a_phone_splits_it() -> None:
    # A phone never cuts an escape pair or a surrogate pair: one across a boundary moves to the next
    # part. Divided by the units, 306 septets were two parts where the phone sent (and paid) three.
    assert phone_parts("a" * 152 + "[" + "b" * 152, GSM) == 3
    assert phone_parts("a" * 151 + "[" + "b" * 153, GSM) == 2  # the pair ends the first part
    assert phone_parts("ż" * 66 + "😀" + "ż" * 66, UCS2) == 3
    assert phone_parts("ż" * 65 + "😀" + "ż" * 67, UCS2) == 2


def test_octets_read_as_text_are_not_billed_for_the_doubt_of_their_reading() -> None:
    # A Latin-1 SMS of 140 octets with accents is stored as text: counted as UTF-8, each "é" was two
    # octets and a one-part vote was billed as two.
    assert phone_parts("glosuje na A " * 10 + "é" * 10, BINARY) == 1
    assert phone_parts("x" * 141, BINARY) == 2
