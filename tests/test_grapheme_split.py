"""Separate SMS are never cut inside a grapheme cluster: a phone shows each SMS alone, so a flag or an
emoji with its skin tone cut between two of them arrived as two broken symbols ('🇵' / '🇱 wygrana')."""

from __future__ import annotations

import unicodedata
from itertools import accumulate
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from smsc.encoding import EmptyText, plan
from tests.conftest import DOMAIN, mail, running_gateway
from tests.test_two_way import two_way_config

FLAG = "Gratulacje" + "!" * 57 + "🇵🇱 wygrana"  # 67 UTF-16 units, then the flag's 4 cross the 70
THUMB = "Brawo" + "!" * 63 + "👍🏽 super"  # 68 units, then 👍 (2) fits and 🏽 (2) does not
FAMILY = "👨\u200d👩\u200d👧"
ENGLAND = "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
KEYCAP = "1\ufe0f\u20e3"


def cluster_starts(text: str) -> list[int]:
    """Where UAX #29 extended grapheme clusters start, by the regex module alone (not smsc.encoding)."""
    return [0, *accumulate(map(len, regex.findall(r"\X", text)))]


def inside_cluster(text: str, i: int) -> bool:
    """Whether a cut before text[i] breaks a cluster."""
    return i not in cluster_starts(text)


def cuts(text: str) -> list[str]:
    return [p.text for p in plan(text, mode="separate").parts]


def test_a_flag_stays_whole_in_the_second_sms() -> None:
    assert cuts(FLAG) == ["Gratulacje" + "!" * 57, "🇵🇱 wygrana"]


def test_a_skin_tone_stays_with_its_emoji() -> None:
    assert cuts(THUMB) == ["Brawo" + "!" * 63, "👍🏽 super"]


def units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)  # UTF-16 code units


@pytest.mark.parametrize(
    "cluster",
    [FAMILY, ENGLAND, KEYCAP, "👍🏽", "🇵🇱", "e\u0301\u0302", "❤\ufe0f"],  # é composes, ̂ stays a mark
)
def test_no_cluster_is_cut_wherever_the_sms_ends(cluster: str) -> None:
    width = units(unicodedata.normalize("NFC", cluster))
    for lead in range(71 - width, 70):  # every position at which the 70-unit end falls inside it
        text = "x" * lead + cluster + " tail"
        parts = cuts(text)
        assert "".join(parts) == unicodedata.normalize("NFC", text)
        assert parts[0] == "x" * lead, (lead, parts)


def test_regional_indicators_pair_from_the_start_of_their_run() -> None:
    # 🇵🇱🇩🇪 is two flags: the end between them is a cluster boundary, the one inside 🇩🇪 is not.
    assert cuts("x" * 62 + "🇵🇱🇩🇪" + "y")[0] == "x" * 62 + "🇵🇱🇩🇪"
    assert cuts("x" * 64 + "🇵🇱🇩🇪" + "y")[0] == "x" * 64 + "🇵🇱"
    assert cuts("x" * 65 + "🇵🇱🇩🇪" + "y")[0] == "x" * 65 + "🇵🇱"
    assert cuts("x" * 67 + "🇵🇱🇩🇪" + "y")[0] == "x" * 67


def test_a_cluster_longer_than_an_sms_is_cut_as_before() -> None:
    assert [len(p) for p in cuts("q" + "\u0301" * 80)] == [70, 11]  # one cluster of 81 units


def test_a_text_cut_to_its_parts_ends_at_a_cluster() -> None:
    # ą keeps the whole text UCS-2 (70 units an SMS): the second SMS would end after 🇵.
    p = plan("ą" + "x" * 137 + "🇵🇱" + "x" * 100, mode="separate", max_parts=2)
    assert [q.text for q in p.parts] == ["ą" + "x" * 69, "x" * 68]
    assert p.dropped.startswith("🇵🇱")
    one = plan("ą" + "x" * 67 + "👍🏽 and more", mode="separate", max_parts=1)
    assert [q.text for q in one.parts] == ["ą" + "x" * 67] and one.dropped.startswith("👍🏽")
    # Cut before the first character GSM lacks, when that is a mark: the letter goes with it.
    gsm = plan("x" * 100 + "q\u0301" + "ą" * 200, mode="separate", max_parts=1)
    assert [q.text for q in gsm.parts] == ["x" * 100] and gsm.dropped.startswith("q\u0301")


def test_concatenated_segments_are_still_filled() -> None:
    # The phone joins concatenated segments before it shows them: no unit is given up there.
    p = plan("x" * 65 + "🇵🇱" + "x" * 100, mode="concatenated")
    assert p.parts[0].units == 67 and "".join(q.text for q in p.parts) == p.text


def cluster_start(text: str, i: int) -> int:
    return max(b for b in cluster_starts(text) if b <= i)


CLUSTERS = [
    FAMILY,
    ENGLAND,
    KEYCAP,
    "👍🏽",
    "🇵🇱",
    "🇵🇱🇩🇪",
    "🇵🇱🇩",
    "❤\ufe0f",
    "q\u0301\u0302",
    "q" + "\u0301" * 75,
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(CLUSTERS),
            st.sampled_from(["x", "xxxxxxx", " ", "ą", "😀", "\u200d", "\U000e0067"]),
            st.characters(codec="utf-8"),
        ),
        min_size=1,
        max_size=300,
    ).map("".join),
    st.integers(1, 12),
)
def test_an_sms_ends_inside_a_cluster_only_when_the_cluster_fills_it(text: str, max_parts: int) -> None:
    try:
        p = plan(text, mode="separate", max_parts=max_parts)
    except EmptyText:  # nothing visible
        return
    whole = p.text + p.dropped
    start = 0
    for q in p.parts:
        end = start + len(q.text)
        if end < len(whole) and inside_cluster(whole, end):
            assert cluster_start(whole, end) <= start, (start, end, whole[start:end])
        start = end


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_the_phone_gets_whole_flags_and_emoji_in_separate_sms(tmp_path: Path, protocol: str) -> None:
    cfg = two_way_config(tmp_path, protocol, relay_port=1)
    async with running_gateway(cfg) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", split_mode="separate"))
        core = gw.daemon.simulator.core
        for body in (FLAG, THUMB):
            assert (await gw.send(mail(f"601123456@{DOMAIN}", body=body))).error is None
        await gw.until(lambda: len(core.records) == 4)
        got = sorted(str(r["text"]) for r in core.records)
        assert got == sorted(["Gratulacje" + "!" * 57, "🇵🇱 wygrana", "Brawo" + "!" * 63, "👍🏽 super"])
        assert {r["concat"] for r in core.records} == {None}  # separate SMS, no UDH to join them


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("ą" * 667 + "🇵🇱 koniec", 667),  # 670 units would end after 🇵
        ("ą" * 668 + "👍🏽 ok", 668),  # ... between 👍 and its skin tone
        ("ą" * 664 + FAMILY + " ok", 664),  # ... inside the ZWJ sequence
        ("ą" * 669 + "กำ", 669),  # ... before Thai SARA AM, a spacing vowel of the letter before it
        ("ą" * 668 + "क्ष", 668),  # ... inside the Devanagari conjunct KSSA (KA, VIRAMA, SSA)
    ],
    ids=["flag", "skin-tone", "zwj-family", "thai-sara-am", "devanagari-conjunct"],
)
def test_a_concatenated_text_cut_to_its_parts_ends_at_a_cluster(text: str, kept: int) -> None:
    # The phone joins the segments, but where the text is cut is an end it shows, and the
    # truncation notice quotes what follows: neither may start or end with half a symbol.
    p = plan(text)
    assert len(p.parts) == 10 and p.text == text[:kept] and p.dropped == text[kept:]
    one = plan(text[600:], max_parts=1)  # the same cut in one SMS of 70 units
    assert one.text == text[600:kept] and one.dropped == text[kept:]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from([*CLUSTERS, "กำ", "क्ष", "x", " ", "ą"]), st.characters(codec="utf-8")),
        min_size=1,
        max_size=400,
    ).map("".join),
    st.sampled_from(["concatenated", "separate"]),
    st.integers(1, 12),
)
def test_where_a_text_is_cut_is_a_cluster_boundary(text: str, mode: str, max_parts: int) -> None:
    try:
        p = plan(text, mode=mode, max_parts=max_parts)  # type: ignore[arg-type]
    except EmptyText:
        return
    if p.truncated:
        starts = cluster_starts(p.text + p.dropped)
        assert len(p.text) in starts or starts[1] > len(p.text), (p.text[-5:], p.dropped[:5])
