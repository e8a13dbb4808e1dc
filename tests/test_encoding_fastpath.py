"""The planner's short path for one SMS of GSM basic characters gives the plan the full path gives.

`smsc.encoding.plan` answers most mails (a short text in plain letters) by `_one_basic_sms`, without
measuring and splitting. These tests hold it to the full path, which is what `plan` runs with the
short path switched off, over random and crafted texts and every option.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smsc import encoding
from smsc.encoding import Coding, EmptyText, Plan, plan
from smsc.gsmalphabet import basic_septets, gsm_encode

# Written out here rather than imported, so that the tests do not share the module's tables.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüàç"
)
GSM_EXTENSION = "\x0c^{}\\[~]|€"

CRAFTED = [
    "",
    " ",
    "\r\n",
    " \n \r ",
    "@",
    "@" * 160,
    "@" * 161,
    "a" * 160,
    "a" * 161,
    "é" * 160,
    "é" * 161,
    "a" * 159 + "€",
    "a" * 159 + "^",
    "€",
    "Δ",
    "Ω and Σ",
    "\x1b",
    "a\x1bb",
    "\x1b@",
    "tab\there",
    "back`tick",
    "Zażółć gęślą jaźń",
    "ą",
    "ç",
    "Ç",
    "e\u0301",  # é once composed
    "a\u0328",  # ą once composed
    "😀",
    "ok 👍🏽",
    "\ud83d",
    "a\ud800b",
    "didn’t",
    "room\u00a04",
    "wait…",
    "\u200b",
    "\u200ba",
    "\x00",
    "\x7f",
    "Benchmark message number 7. The meeting is moved to 10:00, room 4.",
    "@£$¥ _ !?¡¿ §",
]

OPTIONS: list[dict[str, Any]] = [
    {},
    {"mode": "separate"},
    {"max_parts": 1},
    {"mode": "separate", "max_parts": 1},
    {"transliterate": True},
    {"as_written": True},
    {"latin1": True},
    {"latin1": True, "transliterate": True, "mode": "separate", "max_parts": 2},
]


@contextmanager
def full_path() -> Iterator[None]:
    """`plan` as it was before the short path: every text measured and split."""
    saved = encoding._one_basic_sms
    encoding._one_basic_sms = lambda text, latin1: None  # type: ignore[assignment]
    try:
        yield
    finally:
        encoding._one_basic_sms = saved


def outcome(text: str, options: dict[str, Any]) -> Plan | str:
    try:
        return plan(text, **options)
    except EmptyText as exc:
        return f"EmptyText: {exc}"


def assert_same(text: str, options: dict[str, Any]) -> None:
    short = outcome(text, options)
    with full_path():
        full = outcome(text, options)
    assert short == full, (text, options)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("text", CRAFTED)
def test_crafted_texts_plan_as_the_full_path_plans_them(text: str, options: dict[str, Any]) -> None:
    assert_same(text, options)


_chars = st.one_of(
    st.sampled_from("aaaaaaaaaabcde  \n\r"),
    st.sampled_from(GSM_BASIC),
    st.sampled_from(GSM_EXTENSION),
    st.sampled_from("@\x1b\t`\x00\x7f"),
    st.sampled_from("ąćęłńóśźżĄŁ’“”„–—…\u00a0\u200b\u0301\u0328"),
    st.sampled_from("😀🚀👍🏽"),
    st.characters(codec="utf-8"),
)


@settings(max_examples=3000, deadline=None)
@given(
    text=st.one_of(
        st.text(_chars, max_size=170),
        st.text(st.sampled_from(GSM_BASIC), min_size=150, max_size=170),
        st.text(st.sampled_from(GSM_BASIC + GSM_EXTENSION + "ą😀"), min_size=155, max_size=165),
    ),
    options=st.sampled_from(OPTIONS),
)
@example(text="a" * 160, options={})
@example(text="a" * 161, options={})
def test_random_texts_plan_as_the_full_path_plans_them(text: str, options: dict[str, Any]) -> None:
    assert_same(text, options)


def test_every_basic_character_alone_and_in_latin1() -> None:
    latin1_basic = [ch for ch in GSM_BASIC if ord(ch) < 256]
    for ch in GSM_BASIC + GSM_EXTENSION:
        for options in ({}, {"latin1": True}):
            assert_same(ch, options)
            assert_same(ch * 160, options)
            assert_same("x" + ch, options)
        assert basic_septets(ch) == (gsm_encode(ch) if ch in GSM_BASIC else None)
        assert basic_septets(ch * 3, latin1=True) == (gsm_encode(ch * 3) if ch in latin1_basic else None)
    for code in [*range(0x80), *map(ord, "ąé’😀")]:
        if chr(code) not in GSM_BASIC:
            assert basic_septets(chr(code)) is None and basic_septets("ab" + chr(code)) is None


def test_a_short_plain_text_is_planned_by_the_short_path() -> None:
    text = "Benchmark message number 7. The meeting is moved to 10:00, room 4."
    one = encoding._one_basic_sms(text, False)
    assert one is not None
    assert one.coding is Coding.GSM7 and [p.text for p in one.parts] == [text]
    assert encoding._one_basic_sms("a" * 159 + "€", False) is None
    assert encoding._one_basic_sms("Ω", True) is None
    assert encoding._one_basic_sms(" \r\n", False) is None
