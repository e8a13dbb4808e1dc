"""`may_open_signature` refuses most lines by their first three characters: the answer is the three
patterns' own.

The heads a line that the patterns match can begin with are derived from the patterns themselves,
over every ASCII head: the `regex` module's partial matching tells whether a head can be the start of
a match, and a head that cannot has no longer head that can, so the search grows only the heads that
can (all of them, in a tenth of a second). Every such head must pass the prefilter; lines of one or
two characters are compared with the full check one by one; and the prefilter is compared with the
full check over the corpus's lines, crafted lines and generated ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import signatures
from gateway.smtp.signatures import SIGN_OFF, may_open_signature
from tests.test_golden import CORPUS
from tests.test_only_signature_first_line import LINES

PATTERNS = (signatures._SIGNATURE_ANY, SIGN_OFF, signatures._DASH_SIGN_OFF, signatures.NAMED_SIGN_OFF)
ASCII = [chr(c) for c in range(128)]
# Python's `re` counts FS, GS, RS and US (0x1c-0x1f) as `\s` (str.isspace); the `regex` module, which
# follows Unicode's White_Space, does not. In these patterns they can only be `\s` (no literal and
# no class names them), as a tab is: the partial match is asked with a tab in their place.
AS_RE_SPACE = {c: "\t" for c in range(0x1C, 0x20)}


def full_check(line: str) -> bool:
    """`may_open_signature` without its prefilter."""
    return any(p.match(line) is not None for p in PATTERNS)


def can_start_a_match(head: str) -> bool:
    return any(p.match(head.translate(AS_RE_SPACE), partial=True) for p in PARTIAL)


PARTIAL = [regex.compile(p.pattern) for p in PATTERNS]


def heads_that_can_start_a_match() -> Iterator[str]:
    """Every ASCII head of three characters that is the start of some line a pattern matches."""
    grown = [""]
    for _ in range(3):
        grown = [h + c for h in grown for c in ASCII if can_start_a_match(h + c)]
    yield from grown


class _Always:
    """A pattern that matches everything: with these, `may_open_signature` answers what its
    prefilter lets through."""

    def match(self, line: str) -> bool:
        return True


@pytest.fixture
def prefilter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("_SIGNATURE_ANY", "SIGN_OFF", "_DASH_SIGN_OFF", "NAMED_SIGN_OFF"):
        monkeypatch.setattr(signatures, name, _Always())
    yield


def test_the_partial_match_reads_the_patterns_as_re_does() -> None:
    for p in PATTERNS:
        assert "\t" not in p.pattern and "\\t" not in p.pattern and "\\x" not in p.pattern
    classes = (r"\s", r"\S", r"\w", r"\W", r"\d", ".", "(?i:[a-z])", "[A-Z]", r"[\w.'-]", r"[^\s()]", "[^>]")
    for cls in classes:
        for c in ASCII:
            as_regex = regex.fullmatch(cls, c.translate(AS_RE_SPACE))
            assert bool(re.fullmatch(cls, c)) == bool(as_regex), (cls, c)


def test_every_head_that_can_start_a_match_passes_the_prefilter(prefilter: None) -> None:
    heads = list(heads_that_can_start_a_match())
    assert len(heads) > 2000  # "--" and "~Name" heads, the bulk, and the words'
    refused = [h for h in heads if not may_open_signature(h)]
    assert not refused, f"add to signatures._HEADS: {sorted({h.lower() for h in refused})}"


def test_the_prefilter_holds_no_head_that_cannot_start_a_match() -> None:
    heads = {h.lower() for h in heads_that_can_start_a_match()}
    br = {f"{two}{c}" for two in ("br", "lg", "vg") for c in ASCII} | {"br", "lg", "vg"}
    assert sorted(signatures._HEADS - br - heads) == []


def test_lines_of_one_or_two_characters_as_the_full_check() -> None:
    lines = ASCII + [a + b for a in ASCII for b in ASCII]
    assert [x for x in lines if may_open_signature(x) != full_check(x)] == []
    assert may_open_signature("BR") and may_open_signature("--") and may_open_signature("~A")


CRAFTED = [
    "Sent from my iPhone",
    "SENT FROM MY IPHONE",
    "Wyslane z mojego Huawei",
    "Wysłane z mojego Redmi Note 8 Pro",
    "Wysłano z Poczty Onet",
    "Pobierz Outlook dla iOS",
    "Von meinem iPhone gesendet",
    "Download Outlook for Android",
    "Get Outlook for iOS <https://aka.ms/o0ukef>",
    "Thanks and regards, Jan",
    "Mit freundlichen Grüßen",
    "Viele Grüße",
    "Kind regards",
    "Warm regards",
    "Best wishes",
    "Lacze pozdrowienia",
    "Łączę wyrazy szacunku",
    "Dziekuje i pozdrawiam",
    "Serdeczne pozdrowienia",
    "Z powazaniem",
    "z wyrazami szacunku",
    "Regards,",
    "BR",
    "Br, Anna",
    "br\x1cAnna",
    "BRAnna",
    "Brak prądu",
    "{EMAILSIGNATURE}",
    "--",
    "-- Greg",
    "---/dev/il",
    "~Danielle",
    "~ Anna",
    # Beyond ASCII in the head: the full check (re's IGNORECASE reads 'ſ' as 's', 'K' as 'k').
    "ſent from my iPhone",
    "Kind regards",
    "Ǆiękuję",
    "Spotkanie o 10:00.",
    "Benchmark message number 1. The meeting is moved to 10:00, room 4.",
    "Tak",
    "ok",
    "x",
]


def test_crafted_and_listed_lines_as_the_full_check() -> None:
    for line in CRAFTED + [x.strip() for x in LINES]:
        assert may_open_signature(line) == full_check(line), line


def test_the_corpus_lines_as_the_full_check() -> None:
    bodies = [p.read_text("utf-8", "replace") for p in sorted((CORPUS / "bodies").glob("*.txt"))]
    assert len(bodies) > 10
    opened = 0
    for body in bodies:
        for line in body.splitlines():
            line = line.strip()
            assert may_open_signature(line) == full_check(line), line
            opened += full_check(line)
    assert opened > 0


WORDS = ["Sent", "from", "my", "Wysłane", "Wyslano", "z", "mojego", "Pozdrawiam", "BR", "br", "Regards"]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
    st.text(alphabet=st.sampled_from("bBrRsSzZ -~{,.!|/\t\x1cAaKkſ1"), max_size=8),
)
def test_generated_lines_as_the_full_check(words: str, tail: str) -> None:
    for line in (words, tail, tail + words, words + tail):
        assert may_open_signature(line) == full_check(line), line
