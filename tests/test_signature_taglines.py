"""A company's tagline below the name stays off the phone; the person's sentence there reaches it (R-1.3).

A short sentence in a paragraph of its own below "Pozdrawiam\\nJan" is the person's and is sent
("Oddzwonię po 15."), and a company's tagline there ends with a full stop as often: "Quality you can
trust.", "Twój partner w logistyce.", "Since 1995 — your reliable supplier." reached the phone. A
tagline speaks in a slogan's words (two of them, or the company's founding year) and carries nothing
of a person's sentence: no question, no "I" or "będę", no thanks or request, no day or hour, no
number but a year, no "is ready" or "will call", no wishes.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

SIGN_OFFS = ["Pozdrawiam\nJan", "Regards,\nJohn Smith", "Z poważaniem\nJan Kowalski\nACME Sp. z o.o."]


@pytest.mark.parametrize(
    "tagline",
    [
        "Quality you can trust.",
        "Twój partner w logistyce.",
        "Twój partner w logistyce",
        "Since 1995 — your reliable supplier.",
        "Since 1995 — your reliable supplier",
        "ACME – Twój partner w logistyce.",
        "Innovation that matters.",
        "Think green!",
        "Solidny partner od 1998 roku.",
        "Jakość i zaufanie od 25 lat.",
        "Najlepsze rozwiązania dla Twojej firmy!",
        "Razem budujemy przyszłość.",
        "Connecting people since 1987.",
        "Siła jakości i zaufania.",
        "Lider na świecie.",
        "25 years of quality.",
    ],
)
def test_a_tagline_below_the_name_goes(tagline: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n\n{tagline}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize(
    "sentence",
    [
        "Thanks for your trust in this project.",
        "The quality of the samples is great, thanks.",
        "Sprawdź proszę, czy partner podpisał umowę.",
        "Najlepsze życzenia dla Twojej rodziny!",
        "Best wishes to your family!",
        "Your partner's contract is ready.",
        "Twoja paczka jest w drodze.",
        "Nasz partner dostarczy towar jutro.",
        "I trust your judgement, partner.",
        "Our partner will call you.",
        "Best regards to your team!",
        "Is this the best partner for us?",
        # A past verb, the first person in "-am", "światło" (no "świat"), a year the person names
        "Zielone światło od zarządu.",
        "Nasz partner z Gdańska potwierdził.",
        "Our partner confirmed.",
        "Od 1998 r. mieszkam tutaj.",
    ],
)
def test_the_persons_sentence_with_a_slogans_words_stays(sentence: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n\n{sentence}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


async def test_through_smtp_the_tagline_stays_off_the_phone(tmp_path: Path) -> None:
    bodies = [
        "Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\nACME Sp. z o.o.\n\nQuality you can trust.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nTwój partner w logistyce.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nOddzwonię po 15.\n\nSince 1995 — your reliable supplier.",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Spotkanie o 10.",
        "Spotkanie o 10.",
        "Spotkanie o 10.\n\nOddzwonię po 15.",
    ]
