"""Examples for smsc.encoding: alphabet choice, counting, split points, truncation, UDH and MO decoding."""

from __future__ import annotations

import unicodedata

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec used as an independent reference)
import pytest
from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

from smsc.base import Concat
from smsc.decoding import decode_user_data, mend_edges
from smsc.encoding import Coding, EmptyText, concat_udh, parse_udh, plan
from smsc.gsmalphabet import (
    GSM_BASIC_TABLE,
    GSM_EXTENSION_TABLE,
    gsm_char_ok,
    gsm_decode,
    gsm_encode,
    non_gsm_chars,
)
from smsc.plainchars import TRANSLITERATION, transliterate_text

_NAMELESS = {"LINE FEED": "\n", "CARRIAGE RETURN": "\r", "FORM FEED": "\x0c"}


def _char(name: str) -> str:
    return _NAMELESS.get(name) or unicodedata.lookup(name)


# --- tables -----------------------------------------------------------------------------------------


def test_basic_table_matches_gsm0338() -> None:
    """Our basic table is the 23.038 one (as gsm0338 has it) plus ç at 0x09, and nothing else."""
    expected = {_char(name): code for code, name in BASIC_CHARACTER_SET.items() if code != 0x1B}
    expected["ç"] = 0x09
    assert expected == GSM_BASIC_TABLE


def test_extension_table_matches_gsm0338() -> None:
    """Our extension table is exactly the ten 23.038 extension characters."""
    assert {_char(name): code for code, name in BASIC_CHARACTER_SET_EXTENSION.items()} == GSM_EXTENSION_TABLE


def test_gsm_encode_agrees_with_gsm0338_for_every_char() -> None:
    """Every GSM character encodes to the same septets as the reference codec gives."""
    for ch in [*GSM_BASIC_TABLE, *GSM_EXTENSION_TABLE]:
        assert gsm_encode(ch) == ch.replace("ç", "Ç").encode("gsm03.38"), ch


def test_escape_char_itself_is_not_sendable() -> None:
    """A raw ESC in the text is not a character; it must not sneak into the septets unescaped."""
    assert not gsm_char_ok("\x1b")
    with pytest.raises(ValueError):
        gsm_encode("a\x1bb")


def test_transliteration_keys_are_all_outside_gsm_and_values_inside() -> None:
    """Transliteration can never alter GSM text, and always produces GSM text."""
    assert not any(gsm_char_ok(k) for k in TRANSLITERATION)
    assert all(gsm_char_ok(c) for v in TRANSLITERATION.values() for c in v)


# --- alphabet choice and counting ----------------------------------------------------------------------


def test_plain_ascii_is_one_gsm_part() -> None:
    """Short ASCII text is one GSM part whose payload maps @ $ _ to their GSM codes."""
    p = plan("Hi @home $5 a_b")
    assert p.coding is Coding.GSM7 and p.reason is None and not p.concatenated and not p.truncated
    (part,) = p.parts
    assert part.payload == b"Hi \x00home \x025 a\x11b"
    assert part.units == 15 and part.text == p.text == "Hi @home $5 a_b"


@pytest.mark.parametrize(("length", "parts"), [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm_single_and_concat_boundaries(length: int, parts: int) -> None:
    """160 septets fit one SMS; above that every part holds 153."""
    p = plan("x" * length)
    assert len(p.parts) == parts
    assert p.concatenated is (parts > 1)
    if parts > 1:
        assert [q.units for q in p.parts[:-1]] == [153] * (parts - 1)


@pytest.mark.parametrize(("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_single_and_concat_boundaries(length: int, parts: int) -> None:
    """70 code units fit one UCS-2 SMS; above that every part holds 67."""
    p = plan("ą" * length)
    assert p.coding is Coding.UCS2 and len(p.parts) == parts
    if parts > 1:
        assert [q.units for q in p.parts[:-1]] == [67] * (parts - 1)
        assert len(p.parts[0].payload) == 134


def test_extension_chars_count_two_septets() -> None:
    """80 € are 160 septets (one SMS); 81 € need concatenation."""
    p = plan("€" * 80)
    assert len(p.parts) == 1 and p.parts[0].units == 160 and p.parts[0].payload == b"\x1be" * 80
    p = plan("€" * 81)
    assert p.concatenated and [q.units for q in p.parts] == [152, 10]


def test_polish_forces_ucs2_with_reason() -> None:
    """A Polish letter makes the text UCS-2 and the reason names it."""
    p = plan("Zaplac za gaz")
    assert p.coding is Coding.GSM7
    p = plan("Zapłać za gaz ąą")
    assert p.coding is Coding.UCS2
    assert p.reason == "ł, ć, ą forced UCS-2"
    assert plan("Dzień dobry").reason == "ń forced UCS-2"
    assert p.parts[0].payload == "Zapłać za gaz ąą".encode("utf-16-be")


def test_reason_names_at_most_three_and_shows_invisible_ones_by_code() -> None:
    """The reason lists the first three distinct culprits; an invisible one appears as U+XXXX."""
    assert plan("ąąłóśź").reason == "ą, ł, ó forced UCS-2"
    assert plan("a\tb").reason == "U+0009 forced UCS-2"
    assert non_gsm_chars("ąbąłc") == ["ą", "ł"]


def test_reason_names_a_mark_or_format_character_readably() -> None:
    """A combining mark alone would float over the parenthesis of the confirmation; a ZWJ would not show."""
    assert plan("Cafe\u0301 q\u0301").reason == "U+0301 COMBINING ACUTE ACCENT forced UCS-2"
    assert plan("👍\u200d").reason == "👍, U+200D ZERO WIDTH JOINER forced UCS-2"
    assert plan("a\u20e3 \ue000").reason == "U+20E3 COMBINING ENCLOSING KEYCAP, U+E000 forced UCS-2"


def test_nfc_normalisation_first() -> None:
    """Decomposed letters are composed before the alphabet is chosen (é in GSM, ą not)."""
    p = plan("cafe\u0301")
    assert p.coding is Coding.GSM7 and p.text == "café"
    assert plan("a\u0328").reason == "ą forced UCS-2"
    assert plan("\u2126").coding is Coding.GSM7  # OHM SIGN is NFC-equal to Greek Omega


def test_transliterate_keeps_gsm() -> None:
    """With transliteration, Polish and typographic text stays GSM and the flag says it changed."""
    p = plan("Zażółć „gęślą” jaźń – już…", transliterate=True)
    assert p.coding is Coding.GSM7 and p.transliterated and p.reason is None
    assert p.text == 'Zazolc "gesla" jazn - juz...'
    assert not plan("plain text", transliterate=True).transliterated
    assert transliterate_text("ŻÓŁW\u00a0’x’") == "ZOLW 'x'"


def test_a_text_that_stays_ucs2_is_sent_as_written_even_with_transliteration() -> None:
    """Transliteration is there to keep a text GSM: where an emoji keeps it UCS-2 anyway, the Polish
    letters stay, and the reason names the emoji, not the Polish."""
    p = plan("zażółć 😀", transliterate=True)
    assert p.coding is Coding.UCS2 and not p.transliterated
    assert p.text == "zażółć 😀" and p.reason == "😀 forced UCS-2"
    # `…` → `...` would have cost a second billed part for the same message.
    text = "Dzięki ☺ Spotkanie przełożone na jutro… Godzina bez zmian, sala też…"
    p = plan(text, transliterate=True)
    assert p.coding is Coding.UCS2 and len(p.parts) == 1 and p.text == text


def test_c_cedilla_is_gsm() -> None:
    """ç is sent as GSM code 0x09 (shared with Ç) instead of forcing UCS-2."""
    assert gsm_char_ok("ç") and gsm_char_ok("Ç")
    p = plan("garçon")
    assert p.coding is Coding.GSM7 and p.parts[0].payload == b"gar\x09on" and p.text == "garçon"
    assert gsm_decode(b"\x09") == "Ç"


def test_backtick_forces_ucs2() -> None:
    """The backtick is the one printable ASCII character without a GSM code."""
    assert not gsm_char_ok("`")
    assert plan("run `ls`").reason == "` forced UCS-2"


def test_lone_surrogate_is_replaced_not_crashing() -> None:
    """A lone surrogate (from a broken mail charset) becomes U+FFFD so the UTF-16 encoding works."""
    p = plan("ok \udc80")
    assert p.coding is Coding.UCS2 and p.text == "ok \ufffd"


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n", "\u00a0\u2003"])
def test_empty_or_whitespace_raises(text: str) -> None:
    """Blank text is refused (R-1.6), with an error that is also a ValueError."""
    with pytest.raises(EmptyText):
        plan(text)
    assert issubclass(EmptyText, ValueError)


def test_bad_arguments_rejected() -> None:
    """Programming errors in the call are loud, not silently defaulted."""
    with pytest.raises(ValueError):
        plan("x", mode="udh")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plan("x", max_parts=0)


# --- split points ------------------------------------------------------------------------------------------


def test_escape_pair_never_split() -> None:
    """A € that would straddle septets 153/154 moves whole to the next part."""
    p = plan("a" * 152 + "€" + "b" * 20)
    first, second = p.parts
    assert first.text == "a" * 152 and first.units == 152
    assert second.text.startswith("€") and second.payload.startswith(b"\x1be")


def test_escape_pair_ending_exactly_at_153_stays() -> None:
    """A € occupying septets 152-153 still fits the first part."""
    p = plan("a" * 151 + "€" + "b" * 20)
    assert p.parts[0].text == "a" * 151 + "€" and p.parts[0].units == 153


def test_surrogate_pair_never_split() -> None:
    """An emoji (two UTF-16 units) that would straddle units 67/68 moves whole to the next part."""
    p = plan("ą" * 66 + "😀" + "ą" * 10)
    first, second = p.parts
    assert first.units == 66 and first.text == "ą" * 66
    assert second.text.startswith("😀")
    assert second.payload.decode("utf-16-be").startswith("😀")


def test_word_boundary_preferred_when_free() -> None:
    """Each part ends after a space when that does not add a part."""
    words = " ".join(["lorem", "ipsum", "dolor", "sit", "amet"] * 12)  # 323 chars: 3 parts either way
    p = plan(words)
    assert len(p.parts) == 3
    assert all(q.text.endswith(" ") for q in p.parts[:-1])
    assert "".join(q.text for q in p.parts) == words


def test_word_boundary_abandoned_when_it_costs_a_part() -> None:
    """Breaking at the only space would need 3 parts; greedy needs 2, so greedy wins."""
    text = "a" * 150 + " " + "b" * 155
    p = plan(text)
    assert len(p.parts) == 2
    assert p.parts[0].text == "a" * 150 + " bb"


def test_word_boundary_used_when_the_rest_still_fits() -> None:
    """Same shape but shorter tail: the break moves to after the space."""
    p = plan("a" * 150 + " " + "b" * 100)
    assert [q.text for q in p.parts] == ["a" * 150 + " ", "b" * 100]


def test_no_break_space_is_not_a_break_point() -> None:
    """A no-break space (kept in UCS-2 text) never becomes a split point."""
    p = plan("ą" * 60 + "\u00a0" + "ą" * 20)
    assert p.parts[0].units == 67


def test_separate_mode_uses_full_single_limits() -> None:
    """Separate mode sends independent 160/70 SMS without a concat UDH."""
    p = plan("x" * 320, mode="separate")
    assert not p.concatenated and [q.units for q in p.parts] == [160, 160]
    p = plan("ą" * 71, mode="separate")
    assert not p.concatenated and [q.units for q in p.parts] == [70, 1]


# --- truncation ------------------------------------------------------------------------------------------


def test_max_parts_truncates_and_reports_the_rest() -> None:
    """Text needing 14 parts is cut to 10 full parts; dropped is exactly the rest."""
    text = "x" * 2000
    p = plan(text)
    assert p.truncated and len(p.parts) == 10 and p.text == "x" * 1530 and p.dropped == "x" * 470
    assert plan("x" * 1530).truncated is False


def test_max_parts_one_gives_a_full_single_sms() -> None:
    """With max_parts=1 the single part has no UDH, so it takes 160 septets."""
    p = plan("x" * 200, max_parts=1)
    assert p.truncated and not p.concatenated and p.parts[0].units == 160 and p.dropped == "x" * 40


def test_separate_mode_truncation() -> None:
    """Separate mode truncates at max_parts × 160."""
    p = plan("x" * 500, mode="separate", max_parts=2)
    assert p.text == "x" * 320 and p.dropped == "x" * 180


def test_huge_text_truncated_without_measuring_everything() -> None:
    """A megabyte body still yields max_parts parts and keeps text + dropped intact."""
    text = "word " * 200_000 + "ą"
    p = plan(text)
    assert p.coding is Coding.GSM7 and len(p.parts) == 10 and p.text + p.dropped == text


def test_non_gsm_char_only_in_the_cut_off_tail_keeps_gsm() -> None:
    """When the UCS-2 culprit would be cut anyway, the text goes as GSM and keeps more."""
    p = plan("a" * 1600 + "ą")
    assert p.coding is Coding.GSM7 and p.text == "a" * 1530 and p.dropped.endswith("ą")


def test_gsm_prefix_chosen_when_it_reaches_further_than_ucs2() -> None:
    """A culprit at 700 chars: UCS-2 would keep 670, the GSM prefix keeps 700 in fewer parts."""
    p = plan("a" * 700 + "ą" + "a" * 1000)
    assert p.coding is Coding.GSM7 and p.text == "a" * 700 and len(p.parts) == 5
    assert p.dropped == "ą" + "a" * 1000 and p.truncated


def test_early_culprit_keeps_ucs2_truncation() -> None:
    """A culprit near the start: UCS-2 is cut at 10 × 67 units."""
    p = plan("ą" + "a" * 1000)
    assert p.coding is Coding.UCS2 and len(p.text) == 670 and p.reason == "ą forced UCS-2"


# --- UDH -------------------------------------------------------------------------------------------------


def test_concat_udh_round_trip() -> None:
    """concat_udh builds the 8-bit reference IE and parse_udh reads it back."""
    udh = concat_udh(0x1A7, 3, 2)
    assert udh == bytes([5, 0, 3, 0xA7, 3, 2])
    assert parse_udh(udh) == Concat(0xA7, 3, 2)


def test_parse_udh_16bit_and_other_ies() -> None:
    """The 16-bit IE 0x08 is read, and unrelated IEs before it are skipped."""
    assert parse_udh(bytes([6, 8, 4, 0x12, 0x34, 3, 2])) == Concat(0x1234, 3, 2)
    assert parse_udh(bytes([8, 0x24, 1, 5, 0, 3, 9, 2, 1])) == Concat(9, 2, 1)


@pytest.mark.parametrize(
    "udh",
    [b"", b"\x00", b"\x05", b"\x05\x00\x03\x01\x02", bytes([5, 0, 3, 1, 2, 0]), bytes([5, 0, 3, 1, 2, 3]),
     bytes([3, 0x24, 1, 7]), b"\xff" * 3, bytes([5, 0, 9, 1, 2, 1])],
)  # fmt: skip
def test_parse_udh_garbage_is_none(udh: bytes) -> None:
    """Truncated, inconsistent or foreign UDHs give None instead of raising."""
    assert parse_udh(udh) is None


def test_concat_udh_rejects_impossible_positions() -> None:
    """A sequence outside 1..total is a bug in the caller."""
    for total, seq in [(0, 1), (2, 0), (2, 3), (256, 1)]:
        with pytest.raises(ValueError):
            concat_udh(1, total, seq)


# --- decoding -----------------------------------------------------------------------------------------


def test_decode_user_data_gsm_without_and_with_udhi() -> None:
    """DC 0 user data is unpacked GSM; with UDHI the UDH is stripped and parsed."""
    payload = gsm_encode("Hi @ 5€ [ok]")
    assert decode_user_data(payload, 0) == ("Hi @ 5€ [ok]", None)
    assert decode_user_data(concat_udh(7, 2, 1) + payload, 0, udhi=True) == ("Hi @ 5€ [ok]", Concat(7, 2, 1))
    assert decode_user_data(payload, 0xF1) == ("Hi @ 5€ [ok]", None)


def test_decode_user_data_ucs2_without_and_with_udhi() -> None:
    """DC 8 is UTF-16BE, also with a UDH and a surrogate pair; odd bytes become U+FFFD."""
    data = "Cześć 😀".encode("utf-16-be")
    assert decode_user_data(data, 8) == ("Cześć 😀", None)
    udh = bytes([6, 8, 4, 1, 2, 2, 2])
    assert decode_user_data(udh + data, 8, udhi=True) == ("Cześć 😀", Concat(0x102, 2, 2))
    assert decode_user_data(data + b"\x00", 0x18)[0] == "Cześć 😀\ufffd"


def test_decode_user_data_8bit_as_latin1() -> None:
    """8-bit text (SMPP Latin-1 3; DC 4 and 0xF4 octets that read as Latin-1) is read as ISO-8859-1,
    a segment's octets once joined (`mend_edges`)."""
    for dc in (3, 4, 0xF4):
        assert decode_user_data(b"caf\xe9", dc) == ("café", None)
        text, concat = decode_user_data(concat_udh(1, 2, 2) + b"caf\xe9", dc, udhi=True)
        assert (mend_edges(text), concat) == ("café", Concat(1, 2, 2))


def test_decode_user_data_broken_udh_never_raises() -> None:
    """A UDHL past the end: a UDH cut short is said to be damaged, anything else is the text (UDHI set
    by mistake); empty data stays empty."""
    assert decode_user_data(b"\x09\x00\x03", 0, udhi=True)[0].startswith("[The SMS came damaged")
    assert decode_user_data(b"Hi!", 0, udhi=True) == ("Hi!", None)
    assert decode_user_data(b"", 8, udhi=True) == ("", None)
    assert decode_user_data(b"\x00abc", 0, udhi=True) == ("abc", None)


def test_gsm_decode_tolerates_bad_escapes() -> None:
    """Unknown escape gives the base char; ESC ESC and a trailing ESC give a space; high bytes are Latin-1."""
    assert gsm_decode(b"\x1bA") == "A"
    assert gsm_decode(b"a\x1b\x1bb") == "a b"
    assert gsm_decode(b"ab\x1b") == "ab "
    assert gsm_decode(b"\x1b\x0a\x1be") == "\x0c€"
    assert gsm_decode(b"\x80\xff") == "\x80\xff"
    assert gsm_decode(b"\x1b\xe9") == "é"


def test_gsm_decode_on_junk_never_raises() -> None:
    """Every byte value, alone and after ESC, decodes to some text."""
    for b in range(256):
        assert isinstance(gsm_decode(bytes([b])), str)
        assert isinstance(gsm_decode(bytes([0x1B, b, 0x1B])), str)
    assert len(gsm_decode(bytes(range(256)) * 3)) > 0
    assert gsm_decode(bytearray(b"\x1b\x3c")) == "["


def test_gsm_encode_rejects_non_gsm() -> None:
    """gsm_encode refuses text that would need UCS-2, naming the character."""
    with pytest.raises(ValueError, match="ż"):
        gsm_encode("zażółć")
