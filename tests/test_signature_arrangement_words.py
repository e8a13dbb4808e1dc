"""A sentence of the person's below the name with an English verb of an arrangement, or "jak zawsze",
stays (R-1.3).

"Our team confirms the date." in the name's paragraph and "Dostawa w terminie, jak zawsze." below it
went with the signature: the first has no Polish verb ending and no person's word, the second two
slogan words ("w terminie", "zawsze"). An arrangement's English verbs in the third person ("confirms",
"accepts", "arrives", "postpones", ...) and "jak zawsze" are now the person's words
(`taglines.PERSON_WORDS`); a slogan ("Zawsze w terminie.") and a title still go.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import clean_body
from tests.test_signatures_footer_text import phone_got


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (
            "Delivery tomorrow.\n\nRegards,\nJohn Smith\nOur team confirms the date.",
            "Our team confirms the date.",
        ),
        (
            "Delivery tomorrow.\n\nRegards,\nJohn Smith\nThe courier arrives at noon.",
            "The courier arrives at noon.",
        ),
        (
            "Dostawa jutro.\n\nPozdrawiam\nJan\n\nDostawa w terminie, jak zawsze.",
            "Dostawa w terminie, jak zawsze.",
        ),
    ],
)
def test_the_persons_sentence_stays(body: str, kept: str) -> None:
    text = body.split("\n\n")[0]
    assert clean_body(body).text == f"{text}\n\n{kept}"


@pytest.mark.parametrize("below", ["Zawsze w terminie.", "Your reliable partner.", "Head of Sales\nACME Ltd"])
def test_a_slogan_or_a_title_still_goes(below: str) -> None:
    assert clean_body(f"Dostawa jutro.\n\nPozdrawiam\nJan\n\n{below}").text == "Dostawa jutro."


async def test_through_smtp_the_sentence_reaches_the_phone(tmp_path: Path) -> None:
    body = "Delivery tomorrow.\n\nRegards,\nJohn Smith\nOur team confirms the date."
    assert await phone_got(tmp_path, [body]) == ["Delivery tomorrow.\n\nOur team confirms the date."]
