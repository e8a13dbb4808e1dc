"""Polish under a Western label whose only misread letter is "ę" or "ń", and a footnote's "³" after a
German word (R-1.3).

windows-1250 or ISO-8859-2 text labelled iso-8859-1 or windows-1252 was repaired only on two different
misread symbols or letters, or one symbol twice: "Proszę o kontakt, będę jutro o 10." went out as
"Proszê o kontakt, bêdê jutro o 10.", "Gdańsk, Poznań, Toruń" as "Gdañsk, Poznañ, Toruñ" (GSM, so
silently wrong), subjects too. One letter made alone now counts where it stands twice as only a misread
Polish letter does and no letter of a Western text's is beside it: "ń" as "ñ" ending a word or before a
consonant (Spanish's comes before a vowel), "ę" as "ê" beside a word only Polish writes (Portuguese's
"você" and "porquê" end with "ê" too). Spanish, French and Portuguese keep their label.

And the other way: "Siehe Anhang³ und Vertrag³ für Details." went out as "Anhangł … Vertragł": "³"
ending a word twice was taken for Polish "ł". It is now only in a Polish text ("Paweł przyszedł").

decode_text as the MIME walk calls it, then through a real SMTP client into the running daemon, the
text read back from the store (tests/test_charset_leftovers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.charsets import decode_text
from gateway.smtp.intake import IntakeOptions
from tests.test_charset_leftovers import raw_mail, sent_texts

FALLBACKS = IntakeOptions().charset_fallbacks
LABELS = ("iso-8859-1", "windows-1252")

POLISH = [
    "Proszę o kontakt, będę jutro o 10.",
    "Gdańsk, Poznań, Toruń",
    "Dzień dobry, jestem w Gdańsku",
    "Nie mogę, proszę zadzwonić",
]
WESTERN = [
    "España, señor, mañana, el niño y el año",
    "Être ou ne pas être, même la fête",
    "Você sabe o porquê?",
    "Você vem? Porquê",
    "Bebê, você, purê e clichê",
    "A ciência e a paciência: você e ele",
    "Siehe Anhang³ und Vertrag³ für Details.",
    "Siehe Anhang³ und Vertrag³.",
    "Hy sê hy lê daar",
]


@pytest.mark.parametrize("written", ["cp1250", "iso8859-2"])
@pytest.mark.parametrize("text", POLISH)
def test_polish_misread_in_e_or_n_alone_is_read_as_polish(text: str, written: str) -> None:
    for label in LABELS:
        assert decode_text(text.encode(written), label, FALLBACKS) == text, label


@pytest.mark.parametrize("text", WESTERN)
def test_western_text_keeps_its_label(text: str) -> None:
    for label, codec in zip(LABELS, ("latin-1", "cp1252"), strict=True):
        assert decode_text(text.encode(codec), label, FALLBACKS) == text, label


def test_a_polish_past_tense_still_repairs() -> None:
    # "³" ending a word twice in a Polish text is still its "ł".
    assert decode_text("Paweł przyszedł".encode("cp1250"), "iso-8859-1", FALLBACKS) == "Paweł przyszedł"


async def test_through_smtp_the_phone_gets_polish_letters_and_german_footnotes(tmp_path: Path) -> None:
    subject = "Będę w Gdańsku"  # "Bêdê w Gdañsku": two kinds, as before; the body is the new case
    mails = [
        raw_mail(60, POLISH[0].encode("cp1250"), "text/plain; charset=iso-8859-1", subject.encode("cp1250")),
        raw_mail(61, POLISH[1].encode("cp1250"), "text/plain; charset=windows-1252", b"Miasta"),
        raw_mail(62, b"Tekst", "text/plain; charset=windows-1252", "Gdańsk i Poznań".encode("cp1250")),
        raw_mail(63, WESTERN[6].encode("latin-1"), "text/plain; charset=iso-8859-1"),
    ]
    assert await sent_texts(tmp_path, mails) == [
        f"{subject}: {POLISH[0]}",
        f"Miasta: {POLISH[1]}",
        "Gdańsk i Poznań: Tekst",
        f"Temat 63: {WESTERN[6]}",
    ]
