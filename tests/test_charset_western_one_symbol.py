"""Polish text under a Western label (iso-8859-1, windows-1252) with one telling symbol: "Paweł będzie
jutro" in windows-1250 went out as "Pawe³ bêdzie jutro", the very example the rule was written for,
because two different symbols between letters were asked for and its "³" ends a word. Evidence now
is also "³" after three letters, "¿" after two, and windows-1252's "œ" of byte 0x9C (windows-1250's
"ś"): one symbol is enough when the other reading makes two different Polish letters in all. Real
Western text in those charsets stays as it was written: a table of German, French, Spanish,
Portuguese and Danish sentences with their units, prices and fractions.

At decode_text, as the module reads bodies, and through a running gateway's real SMTP listener, the
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

WESTERN = [
    "Größe: 12 m³, Preis 12³ €, Gemüse für Jürgen, ½ kg Äpfel",
    "Zürich, Österreich, Äußerung; Straße 5, 21°C ±0,5, Note¹ und JPY¥ 100",
    "Preis: 5 £, 10 m² und 3 m³; Größe ¼ und ¾, 20 cm³ Wasser",
    "Ma sœur prête son cœur, fête à l'Œuvre",
    "Ma sœur prête son cœur",
    "Être prêt: sœur, cœur, œuvre, bœuf",
    "Crème brûlée, façade, naïve, Noël",
    "L'hôtel coûte 12³ € la nuit, Ÿvonne",
    "Cœur¹ de la ville",
    "¿Qué tal, señor? ¡Año nuevo! Mañana pagaré ½ del precio.",
    "Señora Muñoz: ¿mañana?¡Sí!",
    "El niño comió ñoquis; España, año",
    "São Paulo, não, ação, coração",
    "Blåbærgrød og æbler",
    "Mr. O¿Brien",
]


@pytest.mark.parametrize("text", WESTERN)
def test_real_western_text_keeps_its_label(text: str) -> None:
    for label in LABELS:
        assert decode_text(text.encode("cp1252"), label, FALLBACKS) == text


POLISH = [
    "Paweł będzie jutro",  # "Pawe³ bêdzie": "³" ends a word, "ê" is a letter in the label
    "Wiadomość od Pawła",  # "Wiadomoœæ od Paw³a"
    "Cześć, miłego dnia",
    "Już jestem, będę za chwilę",  # "Ju¿"
    "Coś się stało?",
    "Dziękuję, że przyszłaś",  # ISO-8859-2's "ś" is windows-1250's "¶": the ISO reading is taken
]


@pytest.mark.parametrize("text", POLISH)
def test_polish_text_with_one_telling_symbol_is_read_as_polish(text: str) -> None:
    for label in LABELS:
        for written in ("cp1250", "iso8859-2"):
            assert decode_text(text.encode(written), label, FALLBACKS) == text, (label, written)


def test_one_symbol_and_one_polish_letter_is_not_enough() -> None:
    # "Pawe³" alone could be anything: the label is believed.
    for label in LABELS:
        assert decode_text("Paweł".encode("cp1250"), label, FALLBACKS) == "Pawe³"


async def test_through_smtp_the_phone_gets_pawel_not_pawe3(tmp_path: Path) -> None:
    polish = "Paweł będzie jutro"
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(21, polish.encode("cp1250"), "text/plain; charset=iso-8859-1"),
            raw_mail(22, polish.encode("iso-8859-2"), "text/plain; charset=windows-1252"),
            raw_mail(23, "Ma sœur prête son cœur".encode("cp1252"), "text/plain; charset=iso-8859-1"),
            raw_mail(24, "Größe: 12 m³, Preis 12³ €".encode("cp1252"), "text/plain; charset=windows-1252"),
        ],
    )
    assert texts == [
        f"Temat 21: {polish}",
        f"Temat 22: {polish}",
        "Temat 23: Ma sœur prête son cœur",
        "Temat 24: Größe: 12 m³, Preis 12³ €",
    ]
