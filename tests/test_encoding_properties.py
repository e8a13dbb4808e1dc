"""Properties of smsc.encoding.plan that must hold for any text: lossless, within limits, no split pairs."""

from __future__ import annotations

import math
import sqlite3
import unicodedata
from contextlib import closing
from typing import Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec used as an independent reference)
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import reassembly
from smsc.decoding import decode_user_data
from smsc.encoding import Coding, EmptyText, Plan, plan
from smsc.gsmalphabet import gsm_decode, gsm_encode
from smsc.plainchars import plain_punctuation, transliterate_text

# Written out here rather than imported, so that the tests do not share the module's tables.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüàç"
)
GSM_EXTENSION = "\x0c^{}\\[~]|€"
SINGLE = {Coding.GSM7: 160, Coding.UCS2: 70}
PER_PART = {Coding.GSM7: 153, Coding.UCS2: 67}

# Weighted towards characters that make splitting interesting: spaces, escapes, Polish, emoji.
_chars = st.one_of(
    st.sampled_from("aaaaaaaaaabcde  \n"),
    st.sampled_from(GSM_BASIC),
    st.sampled_from(GSM_EXTENSION),
    st.sampled_from("ąćęłńóśźż’“”„–—…\u00a0`\t"),
    st.sampled_from("😀🚀𝄞"),
    st.characters(codec="utf-8"),
)
texts = st.text(_chars, min_size=1, max_size=900)
Mode = Literal["concatenated", "separate"]
modes: st.SearchStrategy[Mode] = st.sampled_from(["concatenated", "separate"])


def _units(ch: str, coding: Coding) -> int:
    if coding is Coding.GSM7:
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _greedy_parts(text: str, coding: Coding, cap: int, *, clusters: bool = False) -> int:
    """Fewest parts for the text when characters (with `clusters`, grapheme clusters no longer than
    a part, as separate SMS keep them) are indivisible: an independent plain loop."""
    pieces: list[str] = regex.findall(r"\X", text) if clusters else list(text)
    if clusters:  # a cluster longer than a part is cut like plain characters
        pieces = [q for c in pieces for q in ([c] if sum(_units(x, coding) for x in c) <= cap else list(c))]
    parts, used = 0, cap
    for piece in pieces:
        cost = sum(_units(ch, coding) for ch in piece)
        if used + cost > cap:
            parts, used = parts + 1, 0
        used += cost
    return parts


def _is_gsm(text: str) -> bool:
    try:
        text.replace("ç", "Ç").encode("gsm03.38")
    except UnicodeEncodeError:
        return False
    return "\x1b" not in text


def _plan_or_none(text: str, mode: Mode, max_parts: int, transliterate: bool) -> Plan | None:
    try:
        return plan(text, mode=mode, max_parts=max_parts, transliterate=transliterate)
    except EmptyText:  # nothing a phone shows: controls, format characters, spaces, marks, Hangul fillers
        assert all(unicodedata.category(c)[0] in "CZM" or c in "\u115f\u1160\u3164\uffa0" for c in text)
        return None


@settings(max_examples=200, deadline=None)
@given(texts, modes, st.integers(1, 12), st.booleans())
def test_parts_reassemble_to_text_and_nothing_is_lost(
    text: str, mode: Mode, max_parts: int, transliterate: bool
) -> None:
    """Parts join to plan.text exactly, and plan.text + dropped is the whole normalised input."""
    p = _plan_or_none(text, mode, max_parts, transliterate)
    if p is None:
        return
    assert "".join(q.text for q in p.parts) == p.text
    whole = unicodedata.normalize("NFC", text)
    changed = plain_punctuation(whole) if p.plain_punctuation else whole
    assert p.text + p.dropped == (transliterate_text(whole) if p.transliterated else changed)
    assert p.truncated == bool(p.dropped)
    assert 1 <= len(p.parts) <= max_parts
    assert p.concatenated == (mode == "concatenated" and len(p.parts) > 1)


@settings(max_examples=200, deadline=None)
@given(texts, modes, st.integers(1, 12), st.booleans())
def test_no_part_over_its_limit_and_each_payload_decodes_alone(
    text: str, mode: Mode, max_parts: int, transliterate: bool
) -> None:
    """Every part fits its limit and its payload alone decodes to its text (no split escape/surrogate)."""
    p = _plan_or_none(text, mode, max_parts, transliterate)
    if p is None:
        return
    limit = PER_PART[p.coding] if p.concatenated else SINGLE[p.coding]
    for q in p.parts:
        assert 0 < q.units <= limit
        assert q.units == sum(_units(ch, p.coding) for ch in q.text)
        if p.coding is Coding.GSM7:
            assert len(q.payload) == q.units
            assert gsm_decode(q.payload) == q.text.replace("ç", "Ç")
        else:
            assert len(q.payload) == 2 * q.units
            assert q.payload.decode("utf-16-be") == q.text  # strict: a split surrogate would raise


@settings(max_examples=200, deadline=None)
@given(texts, modes, st.booleans())
def test_part_count_is_the_minimum(text: str, mode: Mode, transliterate: bool) -> None:
    """Word-boundary splitting never costs a part: the count equals an indivisible-character greedy split,
    which is the plain ceil(units / capacity) when no character costs 2 and never exceeds one unit of
    waste per part."""
    p = _plan_or_none(text, mode, 255, transliterate)
    if p is None:
        return
    assert not p.truncated
    units = sum(_units(ch, p.coding) for ch in p.text)
    if units <= SINGLE[p.coding]:
        assert len(p.parts) == 1
        return
    cap = PER_PART[p.coding] if mode == "concatenated" else SINGLE[p.coding]
    assert len(p.parts) == _greedy_parts(p.text, p.coding, cap, clusters=mode == "separate")
    if mode == "separate" and any(len(c) > 1 for c in regex.findall(r"\X", p.text)):
        return  # a cluster kept whole may leave more than one unit of a part empty
    assert len(p.parts) <= math.ceil(units / (cap - 1))
    if units == len(p.text):
        assert len(p.parts) == math.ceil(units / cap)


@settings(max_examples=200, deadline=None)
@given(texts, st.booleans())
def test_coding_is_gsm_exactly_when_every_char_has_a_septet(text: str, transliterate: bool) -> None:
    """Without truncation, GSM is chosen iff the reference codec can encode the sent text, else a reason."""
    p = _plan_or_none(text, "concatenated", 255, transliterate)
    if p is None:
        return
    assert (p.coding is Coding.GSM7) == _is_gsm(p.text)
    assert (p.reason is None) == (p.coding is Coding.GSM7)


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from(GSM_BASIC + GSM_EXTENSION), max_size=400))
def test_gsm_text_round_trips(text: str) -> None:
    """gsm_decode(gsm_encode(t)) gives t back (ç comes back as Ç, which shares its code)."""
    encoded = gsm_encode(text)
    assert encoded == text.replace("ç", "Ç").encode("gsm03.38")
    assert gsm_decode(encoded) == text.replace("ç", "Ç")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_gsm_decode_never_raises(data: bytes) -> None:
    """Any bytes decode to text without an exception."""
    assert isinstance(gsm_decode(data), str)


_mo_chars = st.one_of(st.sampled_from("ab żółć"), st.sampled_from(GSM_EXTENSION), st.sampled_from("😀🚀𝄞"))


@settings(max_examples=400, deadline=None)
@given(st.text(_mo_chars, min_size=2, max_size=120), st.data())
def test_an_mo_cut_anywhere_by_the_phone_joins_back_to_its_text(text: str, data: st.DataObject) -> None:
    # A phone may cut its long text at any code unit, inside a surrogate pair or after an escape;
    # each segment is decoded on its own, and stored (SQLite refuses a lone surrogate), then joined.
    ucs2 = any(ch not in GSM_BASIC and ch not in GSM_EXTENSION for ch in text)
    raw = text.encode("utf-16-be") if ucs2 else gsm_encode(text)
    unit = 2 if ucs2 else 1
    units = len(raw) // unit
    cuts = sorted(data.draw(st.sets(st.integers(1, units - 1), min_size=1, max_size=min(5, units - 1))))
    pieces = [raw[a * unit : b * unit] for a, b in zip([0, *cuts], [*cuts, units], strict=True)]
    segments = []
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE TABLE segment (text TEXT)")
        for seq, piece in enumerate(pieces, 1):
            udh = bytes((5, 0, 3, 9, len(pieces), seq))
            decoded, concat = decode_user_data(udh + piece, 8 if ucs2 else 0, udhi=True)
            assert concat is not None
            db.execute("INSERT INTO segment VALUES (?)", (decoded,))
            segments.append((concat.seq, decoded))
    assert reassembly.join(data.draw(st.permutations(segments)), len(pieces)) == text
