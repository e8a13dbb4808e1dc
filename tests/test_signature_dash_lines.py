"""A line of dashes and words is a signature only when the words are a name (R-1.3).

The one-line sign-off at the end ("--Bob", "---/dev/il", "~Danielle") took any line that began
with two or three dashes or a tilde, and "-- " followed by a capital started a signature whatever
came after it: "--> sala 204", "-- 50 zł netto", "--- przerwa ---" and "~Minus 5 stopni" were cut
from the end of a text, and "-- Sala 204 zamiast 101" cut everything below it. A name (capitalised
words) or a path after the dashes is a signature still.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.smtp.signatures import cut_signature
from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

KEPT = [
    "Zmiana sali:\nsala 101\n--> sala 204",
    "Plan:\n10:00 start\n--- przerwa ---",
    "Cena:\n-- 50 zł netto",
    "Wynik meczu\n--2:1 dla nas",
    "Temperatura jutro\n~minus 5 stopni",
    "Temperatura jutro\n~Minus 5 stopni",
    "Zmiana:\n-- Sala 204 zamiast 101\nProszę przekazać dalej.",
    "Zmiana:\n-- godz. 10:00\nSala 204.",
]


@pytest.mark.parametrize("body", KEPT)
def test_dashes_before_words_that_are_no_name_stay(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Spotkanie jutro.\n--Anna", "Spotkanie jutro."),
        ("Spotkanie jutro.\n-- Anna Nowak", "Spotkanie jutro."),
        ("Isn't that the case?\n\n---/dev/il", "Isn't that the case?"),
        ("Hello\n\n~Danielle", "Hello"),
        ("Hello\n\n~ Łukasz", "Hello"),
        ("Text\n-- Greg\nGreg Allen\nSenior Engineer", "Text"),
        ("Text\n-- Jan Kowalski\nKierownik IT\nACME Sp. z o.o.", "Text"),
    ],
)
def test_dashes_before_a_name_still_end_the_text(body: str, expected: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (expected, True)


async def test_through_smtp_a_line_of_dashes_and_words_reaches_the_phone(tmp_path: Path) -> None:
    bodies = [
        "Zmiana sali:\nsala 101\n--> sala 204",
        "Zmiana:\n-- Sala 204 zamiast 101\nPrzekaz dalej.",
        "Jutro.\n--Anna",
    ]
    assert await phone_got(tmp_path, bodies) == [*bodies[:2], "Jutro."]


class _CountedLines(list[str]):
    """Lines that count how many of them each slice copies: the work a cut does, not its time."""

    copied = 0

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            _CountedLines.copied += len(range(*key.indices(len(self))))
        return super().__getitem__(key)


def test_a_long_list_of_dash_lines_is_read_once() -> None:
    # Each "-- Anna" line of a list looked for its neighbours in a copy of all the lines below and
    # above it: n * n lines copied, 25,000 such lines held the event loop for over a second.
    n = 4000
    lines = _CountedLines(["Lista:", *(f"-- {name}" for _ in range(n // 2) for name in ("Anna", "Jan"))])
    _CountedLines.copied = 0
    assert cut_signature(lines, []) == lines
    assert _CountedLines.copied <= 2 * len(lines)


# How people sign after dashes beyond capitalised words: a title first, a company, a phone or a smile
# after the name, a phone's footer, a nickname, a web address. Each reached the phone since d05cbc2b.
SIGNED = [
    "--jan",
    "-- Jan Kowalski - ACME",
    "-- Jan Kowalski, ACME",
    "-- Dr hab. Jan Kowalski",
    "-- mgr inż. Jan Kowalski",
    "--Jan 601 123 456",
    "-- Ania :)",
    "-- Sent from my iPhone",
    "-- www.acme.pl",
]


@pytest.mark.parametrize("line", SIGNED)
def test_a_signed_dash_line_ends_the_text(line: str) -> None:
    cleaned = clean_body(f"Spotkanie jutro.\n\n{line}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie jutro.", True)


@pytest.mark.parametrize("line", [line for line in SIGNED if " " in line and "www" not in line])
def test_a_signed_dash_line_above_a_signature_starts_it(line: str) -> None:
    cleaned = clean_body(f"Spotkanie jutro.\n\n{line}\nACME Sp. z o.o.\ntel. +48 601 123 456\nwww.acme.pl")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie jutro.", True)


async def test_through_smtp_a_signed_dash_line_stays_off_the_phone(tmp_path: Path) -> None:
    bodies = [f"Jutro.\n{line}" for line in ("-- Jan Kowalski - ACME", "--jan")]
    assert await phone_got(tmp_path, bodies) == ["Jutro.", "Jutro."]
