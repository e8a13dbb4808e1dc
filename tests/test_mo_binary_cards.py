"""The vCards and vCalendars a reply mail attaches are found in time linear in the SMS's text.

A phone's MO of 255 parts holds some 35 KB of text, and the loop that reads it is the one every SMTP
session and SMSC link runs on. The cards were found by one lazy regex from a BEGIN line to its END
line: for each BEGIN without an END it scanned to the end of the text, so "BEGIN:VCARD" 2,900 times
held the loop for most of a second. Work is counted here, not timed: each search of the card
patterns is charged the characters from where it starts to where it ends (to the text's end when it
finds nothing), which bounds what a pattern without backtracking across lines reads.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from gateway import mailcards
from gateway import mailheaders as h

MO_TEXT_MAX = 35_000  # about what 255 parts of 8-bit data or GSM text hold
# Linear: every character read by a BEGIN search once, and by END searches at most twice (once
# within a card, once for each kind found without its END). The lazy regex read ~50 million here.
WORK_PER_CHAR = 3

# What was found before, kept as the reference of what is a card: the result must not change.
_LAZY = re.compile(r"^BEGIN:(VCARD|VCALENDAR)[ \t]*\n.*?^END:\1[ \t]*$", re.I | re.M | re.S)


def lazy_cards(text: str) -> list[tuple[str, str, str]]:
    found = []
    for i, m in enumerate(_LAZY.finditer(h.body(text))):
        if i == 10:
            break
        kind, name = mailcards._CARD_FILES[m[1].upper()]
        found.append((kind, name.format(f"-{i + 1}" if i else ""), m[0] + "\n"))
    return found


class Counted:
    """A compiled pattern whose searches are charged the characters they can have read."""

    def __init__(self, pattern: re.Pattern[str], work: list[int]) -> None:
        self.pattern = pattern
        self.work = work

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        m = self.pattern.search(text, pos)
        self.work[0] += (m.end() if m else len(text)) - pos
        return m


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    spent = [0]
    monkeypatch.setattr(mailcards, "_BEGIN", Counted(mailcards._BEGIN, spent))
    ends: Any = {kind: Counted(p, spent) for kind, p in mailcards._END.items()}
    monkeypatch.setattr(mailcards, "_END", ends)
    return spent


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("BEGIN:VCARD\n" * 2900, []),
        ("BEGIN:VCARD\nBEGIN:VCALENDAR\n" * 1250, []),
        (
            "BEGIN:VCARD\n" * 2800 + "BEGIN:VCALENDAR\nDTSTART:20260101T100000\nEND:VCALENDAR\n",
            ["x-vcalendar"],
        ),
        ("BEGIN:VCALENDAR\r\nEND:VCARD\r\n" * 1200 + "BEGIN:VCARD\nN:Jan\nEND:VCARD", ["vcard"]),
        ("BEGIN:VCARD\nN:Jan\nEND:VCARD\n" * 1200, ["vcard"] * 10),
    ],
    ids=["begins", "two-kinds", "event-after", "other-ends", "many-cards"],
)
def test_cards_of_a_long_mo_are_found_in_linear_work(work: list[int], text: str, kinds: list[str]) -> None:
    assert len(text) <= MO_TEXT_MAX
    found = mailcards.cards(text)
    assert [kind for kind, _, _ in found] == kinds
    assert all(re.search(r"\nEND:V(CARD|CALENDAR)\n\Z", card, re.I) for _, _, card in found)
    assert work[0] <= WORK_PER_CHAR * len(text), work[0]


def test_the_cards_found_are_those_the_lazy_regex_found() -> None:
    pieces = [
        "BEGIN:VCARD\n", "BEGIN:vcalendar \n", "END:VCARD\n", "END:VCALENDAR\n", "end:vcard\t\n",
        "FN:A\n", "x", "\n", "BEGIN:VCARD", "END:VCARD x\n", " BEGIN:VCARD\n", "\r\n", "END:VCALENDAR",
    ]  # fmt: skip
    rng = random.Random(2462960)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        assert mailcards.cards(text) == lazy_cards(text), text
