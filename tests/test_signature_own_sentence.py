"""A short sentence of the person's below the name reaches the phone (R-1.3).

"Pozdrawiam\\nJan\\n\\nOddzwonię po 15." sent only what stood above the sign-off: a block of short lines
below a sign-off word went whole, but for a postscript. A paragraph of its own below the name that is
a sentence (words ending with a full stop, "!" or "?") is the person's and stays; a title, a company
("ACME Sp. z o.o.", "ACME Inc."), an address, a phone, a company's banner or a notice about the mail
("Please do not reply to this email.") is none, and goes with the signature.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got


@pytest.mark.parametrize(
    "sentence",
    [
        "Oddzwonię po 15.",
        "Dzięki za szybką odpowiedź!",
        "Can you confirm by Friday?",
        "Jutro jestem na urlopie, pisz SMS-em :)",
        "Faktura FV/2024/11/0012 jest już opłacona.",
        "Feel free to call me tomorrow.",
        "Sale 204 i 205 są zajęte, spotkajmy się w 310.",
    ],
)
def test_a_sentence_below_the_name_stays(sentence: str) -> None:
    for sign_off in (
        "Pozdrawiam\nJan",
        "Regards,\nJohn Smith",
        "Z poważaniem\nJan Kowalski\nACME Sp. z o.o.",
    ):
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n\n{sentence}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


@pytest.mark.parametrize(
    "line",
    [
        "Kierownik Projektu",
        "ACME Sp. z o.o.",
        "ACME S.A.",
        "Globex Inc.",
        "Jan Kowalski, PhD.",
        "tel. +48 601 123 456",
        "ul. Prosta 1, 00-001 Warszawa.",
        "Sales Manager | ACME Inc.",
        "Please do not reply to this email.",
        "Ta wiadomość została wygenerowana automatycznie.",
        "Join us at Booth 42 at Expo 2027!",
        "Sent from my iPhone.",
    ],
)
def test_signature_material_below_the_name_still_goes(line: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{line}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


def test_the_sentence_stays_and_the_company_below_it_goes() -> None:
    body = "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nOddzwonię po 15.\n\nACME Sp. z o.o.\ntel. 22 123 45 67"
    body += "\n\nJoin us at Booth 42!"
    assert clean_body(body).text == "Spotkanie o 10.\n\nOddzwonię po 15."


async def test_through_smtp_the_sentence_below_the_name_arrives(tmp_path: Path) -> None:
    bodies = [
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nPS. Oddzwonię po 15.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nOddzwonię po 15.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nKierownik Projektu\nACME Sp. z o.o.",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Spotkanie o 10.\n\nPS. Oddzwonię po 15.",
        "Spotkanie o 10.\n\nOddzwonię po 15.",
        "Spotkanie o 10.",
    ]


@pytest.mark.parametrize("tagline", ["Quality you can trust.", "Stay hungry, stay foolish.", "Think green!"])
def test_a_subject_only_alert_with_a_tagline_below_the_signature_sends_the_subject(tagline: str) -> None:
    """Outlook's automatic signature under a subject-only alert is no text of the person's, a tagline
    ending it with a full stop or not: the subject alone is sent, as before sentences below the name
    were kept."""
    from gateway.smtp.intake import read_mail

    body = f"Pozdrawiam\r\nJan Kowalski\r\nACME Sp. z o.o.\r\n\r\n{tagline}\r\n"
    raw = (
        "From: jan@acme.pl\r\nTo: 601123456@sms.example\r\nSubject: Serwer padl w serwerowni B\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()
    assert read_mail(raw).text == "Serwer padl w serwerowni B"
