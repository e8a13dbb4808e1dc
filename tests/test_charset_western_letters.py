"""Polish under a Western label with no symbol among its letters is read as Polish (R-1.3).

A windows-1250 text labelled iso-8859-1 or windows-1252 was repaired only on a symbol where a letter
stands ("Pawe³", "mo¿e"); with only "ę", "ć", "ń", "ś" in it the phone got "proszê sprawdziæ". Letters
that no French or Spanish word has where they stand ("ê"/"æ" ending a word, "ê" after "i", "ñ" before
a consonant, "œ" before one) now count as that evidence, with two different Polish letters made by
the other reading; French, Spanish and Portuguese keep their label.

decode_text as the MIME walk calls it, then through a real SMTP client into the running daemon.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.charsets import decode_text
from tests.test_charset_leftovers import raw_mail, sent_texts

POLISH = [
    "Awaria serwera, proszę sprawdzić.",
    "Wiadomość: coś się stało, dzień dobry.",
    "Proszę oddzwonić jutro.",
]
WESTERN = [
    ("Le cœur de la forêt est prêt, même si c'est la fête.", "cp1252"),
    ("Curriculum vitæ, ex æquo, une fête.", "cp1252"),
    ("Mañana, señor, el niño y España.", "latin-1"),
    ("Você está bem? Três mês, você sabe.", "latin-1"),
]


@pytest.mark.parametrize("label", ["iso-8859-1", "windows-1252"])
@pytest.mark.parametrize("text", POLISH)
def test_polish_with_only_letters_misread_is_repaired(text: str, label: str) -> None:
    assert decode_text(text.encode("cp1250"), label, ("utf-8",)) == text


@pytest.mark.parametrize(("text", "codec"), WESTERN)
def test_french_spanish_and_portuguese_keep_their_label(text: str, codec: str) -> None:
    label = "windows-1252" if codec == "cp1252" else "iso-8859-1"
    assert decode_text(text.encode(codec), label, ("utf-8",)) == text


async def test_through_smtp_the_phone_gets_polish_and_french(tmp_path: Path) -> None:
    mails = [
        raw_mail(40, POLISH[0].encode("cp1250"), "text/plain; charset=iso-8859-1"),
        raw_mail(41, WESTERN[0][0].encode("cp1252"), "text/plain; charset=windows-1252"),
    ]
    assert await sent_texts(tmp_path, mails) == [f"Temat 40: {POLISH[0]}", f"Temat 41: {WESTERN[0][0]}"]
