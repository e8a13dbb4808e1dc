"""A sentence of the person's in the name's paragraph reaches the phone (R-1.3).

"Pozdrawiam,\\nJan. Oddzwonię jutro." and "Pozdrawiam\\nJan\\nOddzwonię jutro rano." sent only what
stood above the sign-off: the name's paragraph went whole, as a signature's lines stand there (a
title, a company, an address, a phone), and only a paragraph of its own below it could be the
person's sentence. What follows the name on its line after a full stop, and the paragraph's last line
when it is a sentence written as one (a full stop, its words after the first in small letters) with
a word of the person's ("oddzwonię", "zostawiłem", "jutro"), are the person's. A title, a company or
an address there still goes: it has no full stop ("Kierownik projektu"), its words in capitals
("Dział Obsługi Klienta."), a company's form ("ACME Sp. z o.o."), contact details, or no word of the
person's ("Kierownik działu sprzedaży.", "Radca prawny.", "Zawsze na czas."). So does a sentence
without its full stop ("Jan\\nOddzwonię jutro rano"): its shape is a title's, and the signatures in
the corpus and in tests/data/signatures hold only such lines below the name. The sign-off, the name
and the sentence on one line ("Pozdrawiam, Jan. Oddzwonię jutro.") are no sign-off block and stay
whole, as before.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

SIGN_OFFS = ["Pozdrawiam", "Regards,", "Z poważaniem,"]


@pytest.mark.parametrize(
    ("below", "sentence"),
    [
        ("Jan. Oddzwonię jutro.", "Oddzwonię jutro."),
        ("Jan Kowalski. Będę o 12.", "Będę o 12."),
        ("John. Call me later.", "Call me later."),
        ("Jan\nOddzwonię jutro rano.", "Oddzwonię jutro rano."),
        ("Jan Kowalski\nKlucze zostawiłem na portierni.", "Klucze zostawiłem na portierni."),
        ("John Smith\nSee you at the meeting.", "See you at the meeting."),
        ("Jan Kowalski\nKierownik projektu\nWracam w poniedziałek.", "Wracam w poniedziałek."),
        # A number, a short answer or a "no" in the line, with no other word of the person's
        ("Jan Kowalski\nPaczka 612345678 już w drodze.", "Paczka 612345678 już w drodze."),
        ("Jan Kowalski\nKod do bramy 1234.", "Kod do bramy 1234."),
        ("Jan Kowalski\nOK, pasuje.", "OK, pasuje."),
        ("Jan Kowalski\nNie dam rady.", "Nie dam rady."),
        ("John Smith\nWe accept your offer.", "We accept your offer."),
    ],
)
def test_the_persons_sentence_in_the_names_paragraph_stays(below: str, sentence: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n{below}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


@pytest.mark.parametrize(
    "below",
    [
        "Jan\nOddzwonię jutro rano",
        "Jan Kowalski\nKierownik projektu",
        "Jan Kowalski\nDział Obsługi Klienta.",
        "Jan Kowalski\nACME Sp. z o.o.",
        "Jan Kowalski\nSales Manager | ACME Inc.",
        "Jan Kowalski.\nQuality you can trust.",
        "Jan Kowalski\nul. Prosta 1, 00-001 Warszawa.",
        "Jan Kowalski\ntel. +48 601 123 456.",
        # Written as sentences, but with no word of the person's in them, or an address
        "Jan Kowalski\nKierownik działu sprzedaży.",
        "Jan Kowalski\nSpecjalista ds. obsługi klienta.",
        "Jan Kowalski\nRadca prawny.",
        "Jan Kowalski\nACME Sp. z o.o.\nul. Prosta 1 lok. 5, Warszawa.",
        "Jan Kowalski\nJakość, której możesz zaufać.",
        "Jan Kowalski\nZawsze na czas.",
        "Jan Kowalski\nInfolinia czynna 24/7.",
    ],
)
def test_the_signatures_lines_in_the_names_paragraph_still_go(below: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n{below}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


def test_the_sign_off_the_name_and_a_sentence_on_one_line_stay() -> None:
    body = "Spotkanie o 10.\n\nPozdrawiam, Jan. Oddzwonię jutro."
    assert clean_body(body).text == body


async def test_through_smtp_the_sentence_by_the_name_arrives(tmp_path: Path) -> None:
    bodies = [
        "Spotkanie o 10.\n\nPozdrawiam,\nJan. Oddzwonię jutro.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\nOddzwonię jutro rano.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\nKierownik projektu",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Spotkanie o 10.\n\nOddzwonię jutro.",
        "Spotkanie o 10.\n\nOddzwonię jutro rano.",
        "Spotkanie o 10.",
    ]
