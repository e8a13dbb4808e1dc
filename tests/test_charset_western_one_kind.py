"""Polish under a Western label (iso-8859-1, windows-1252) whose misread letters are all of one kind (R-1.3):
"Paweł przyszedł" in windows-1250 went out as "Pawe³ przyszed³", "Sąsiad ma wąsy" as "S¹siad ma w¹sy",
"Może już" as "Mo¿e ju¿": the rule asked for two different symbols, or two different Polish letters
made, and one letter twice is neither. A small Polish letter's symbol standing twice where only it
would (between two small letters, "³" ending a word after three letters, "¿" after two) is that
evidence now. Western text keeps its label: a symbol before a capital ("mean±SD", "O¿Brien"), the
broken bar as a separator, units after one or two letters ("m³", "cm³"), Spanish "¿" after a space,
footnote marks before a space, "±" between small letters ("Messwerte a±b und c±d", which went out as
"aąb … cąd"), and every sentence of the older Western tables.

decode_text as the MIME walk calls it, then through a real SMTP client into the running daemon, the
text read back from the store (tests/test_charset_leftovers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.charsets import decode_text
from gateway.smtp.intake import IntakeOptions
from tests.test_charset_leftovers import raw_mail, sent_texts
from tests.test_charset_western_letters import WESTERN as WESTERN_LETTERS
from tests.test_charset_western_one_symbol import WESTERN as WESTERN_SYMBOLS

FALLBACKS = IntakeOptions().charset_fallbacks
LABELS = ("iso-8859-1", "windows-1252")

# Each misreads one Polish letter only, twice or more, in both Polish charsets.
POLISH = [
    "Paweł przyszedł",  # "Pawe³ przyszed³"
    "Był miły i mały",  # "mi³y", "ma³y"
    "Może już jutro",  # "Mo¿e ju¿"
    "Proszę oddzwonić: Paweł Kowal, dział kadr, był tu",  # ł thrice, with ę and ć (two kinds) as before
]
# "ą" alone: windows-1250's "¹" is told ("S¹siad ma w¹sy"); ISO-8859-2's "±" is a Western text's sign
# too ("a±b und c±d"), and that text, "S±siad ma w±sy", keeps its label (given up).
POLISH_1250 = "Sąsiad ma wąsy"
WESTERN = [
    "Messwerte a±b und c±d bitte prüfen",
    "x±y, u±v und p±q",
    "mean±SD and mean±SEM of the group",
    "Mr. O¿Brien and Mr. O¿Neil",
    "Home¦About¦Contact",
    "Größe 12 m³, 3 m³ und 20 cm³ Wasser",
    "¿Qué? ¿Cómo? ¿Dónde? Señor",
    "Note¹ und Satz¹, Preis 12³ €",
    "x³ + y³ = z³",
]


@pytest.mark.parametrize("written", ["cp1250", "iso8859-2"])
@pytest.mark.parametrize("text", POLISH)
def test_polish_misread_in_one_letter_is_read_as_polish(text: str, written: str) -> None:
    for label in LABELS:
        assert decode_text(text.encode(written), label, FALLBACKS) == text, label


@pytest.mark.parametrize("text", WESTERN + WESTERN_SYMBOLS + [t for t, _ in WESTERN_LETTERS])
def test_western_text_keeps_its_label(text: str) -> None:
    for label, codec in zip(LABELS, ("latin-1", "cp1252"), strict=True):
        data = text.encode(codec, "ignore")  # "œ" and "€" are windows-1252's alone
        assert decode_text(data, label, FALLBACKS) == data.decode(codec)


def test_a_letter_made_of_plus_minus_alone_keeps_the_label() -> None:
    for label in LABELS:
        assert decode_text(POLISH_1250.encode("cp1250"), label, FALLBACKS) == POLISH_1250
        assert decode_text(POLISH_1250.encode("iso8859-2"), label, FALLBACKS) == "S±siad ma w±sy"


def test_one_symbol_once_is_still_not_enough() -> None:
    for label in LABELS:
        assert decode_text("Paweł".encode("cp1250"), label, FALLBACKS) == "Pawe³"
        assert decode_text("Ma wąsy".encode("cp1250"), label, FALLBACKS) == "Ma w¹sy"


async def test_through_smtp_the_phone_gets_pawel_przyszedl(tmp_path: Path) -> None:
    mails = [
        raw_mail(50, POLISH[0].encode("cp1250"), "text/plain; charset=iso-8859-1"),
        raw_mail(51, POLISH[2].encode("iso8859-2"), "text/plain; charset=windows-1252"),
        raw_mail(52, WESTERN[0].encode("cp1252"), "text/plain; charset=windows-1252"),
    ]
    assert await sent_texts(tmp_path, mails) == [
        f"Temat 50: {POLISH[0]}",
        f"Temat 51: {POLISH[2]}",
        f"Temat 52: {WESTERN[0]}",
    ]
