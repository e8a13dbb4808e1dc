"""Outlook's automatic-signature bookmark in an HTML body (R-1.3). Outlook for Windows puts its
signature's first paragraph in <a name="_MailAutoSig">; the paragraph holding it, and all below,
is the signature. Deleting the signature leaves the bookmark behind, empty, and what is typed there
is the message: "Dzień dobry,\\n[bookmark]Paczka czeka w recepcji do 18." reached the phone as
"Dzień dobry,". Only a bookmark that holds its paragraph's whole text starts the signature now.
Through a real SMTP client into the running daemon, read at its built-in simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts


def outlook(*paragraphs: str) -> bytes:
    body = "".join(f"<p class=MsoNormal>{p}<o:p></o:p></p>" for p in paragraphs)
    markup = f"<html><body><div class=WordSection1>{body}</div></body></html>"
    return mail(markup, subject="Faktura", ctype="text/html; charset=utf-8")


SIGNATURE = [
    '<a name="_MailAutoSig"><b>Jan Kowalski</b><o:p>&nbsp;</o:p></a>',
    "<span style='mso-bookmark:_MailAutoSig'>Kierownik Działu Zakupów</span>",
    "<span style='mso-bookmark:_MailAutoSig'>ACME Sp. z o.o.</span>",
]
CASES = [
    # The signature deleted, its empty bookmark left where the text is typed.
    (
        outlook("Dzień dobry,", '<a name="_MailAutoSig"></a>Paczka czeka w recepcji do 18.'),
        "Faktura: Dzień dobry,\nPaczka czeka w recepcji do 18.",
    ),
    (
        outlook("Dzień dobry,", '<a name="_MailAutoSig"><o:p>&nbsp;</o:p></a>Kod do drzwi 4411.'),
        "Faktura: Dzień dobry,\nKod do drzwi 4411.",
    ),
    # Typed in front of the bookmark's text in its paragraph: the paragraph is no signature alone.
    (
        outlook("Dzień dobry,", 'Wejście od podwórza. <a name="_MailAutoSig">Jan</a>'),
        "Faktura: Dzień dobry,\nWejście od podwórza. Jan",
    ),
    # The real signature still goes.
    (
        outlook("Proszę o przesłanie faktury do piątku.", "&nbsp;", *SIGNATURE),
        "Faktura: Proszę o przesłanie faktury do piątku.",
    ),
]


@pytest.mark.parametrize(("raw", "sent"), CASES, ids=["empty", "nbsp only", "typed before", "signature"])
def test_only_a_bookmark_holding_its_paragraph_starts_the_signature(raw: bytes, sent: str) -> None:
    assert read_mail(raw).text == sent


async def test_through_smtp_the_text_typed_at_an_empty_bookmark_reaches_the_phone(tmp_path: Path) -> None:
    assert await phone_texts(tmp_path, [raw for raw, _ in CASES]) == [sent for _, sent in CASES]
