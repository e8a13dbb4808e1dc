"""One word of a notice in a sentence of the person's below the name does not cut it (R-1.3).

A paragraph below "Pozdrawiam\\nJan" with any word a notice uses was no sentence of the person's:
"Wydrukuj umowę i podpisz ją do piątku." went with the signature, as a printing notice would. One
such word now cuts only a paragraph without the person's shape (`taglines.persons_shape`: a verb, a
request, a day or an hour); two kinds of them still read as a notice.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import clean_body
from tests.test_signatures_footer_text import phone_got

TEXT = "Dostawa jutro."
ABOVE = "Pozdrawiam\nJan"


@pytest.mark.parametrize(
    "sentence",
    [
        "Wydrukuj umowę i podpisz ją do piątku.",
        "Please print the contract and sign it by Friday.",
        "Przesyłam poufne dane klienta, oddzwonię jutro.",
    ],
)
def test_the_persons_sentence_with_one_notice_word_stays(sentence: str) -> None:
    assert clean_body(f"{TEXT}\n\n{ABOVE}\n\n{sentence}").text == f"{TEXT}\n\n{sentence}"


@pytest.mark.parametrize(
    "notice",
    [
        "Wiadomość może zawierać informacje poufne.",
        "Nie drukuj tej wiadomości.",
        "Dbajmy o środowisko, nie drukuj.",
    ],
)
def test_a_notice_still_goes(notice: str) -> None:
    assert clean_body(f"{TEXT}\n\n{ABOVE}\n\n{notice}").text == TEXT


async def test_through_smtp_the_sentence_reaches_the_phone(tmp_path: Path) -> None:
    sentence = "Wydrukuj umowę i podpisz ją do piątku."
    assert await phone_got(tmp_path, [f"{TEXT}\n\n{ABOVE}\n\n{sentence}"]) == [f"{TEXT}\n\n{sentence}"]
