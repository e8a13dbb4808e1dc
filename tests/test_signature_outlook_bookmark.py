"""Outlook's automatic-signature bookmark in an HTML body (R-1.3). Outlook for Windows puts its
signature's first paragraph in <a name="_MailAutoSig">; the paragraph holding it, and all below,
is the signature. Deleting the signature leaves the bookmark behind, empty, and what is typed there
is the message: "Dzień dobry,\\n[bookmark]Paczka czeka w recepcji do 18." reached the phone as
"Dzień dobry,". Only a bookmark that holds its paragraph's whole text starts the signature now.
The text alternative, which the gateway reads, has no bookmark: there the signature under a name
other than the From's went to the phone; the HTML alternative's bookmark now says where it starts.
Through a real SMTP client into the running daemon, read at its built-in simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.test_intake import mail, multipart, part
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


TEXT = "Proszę o przesłanie faktury do piątku.\n\nJan Kowalski\nKierownik Działu Zakupów\nACME Sp. z o.o."
HTML = outlook("Proszę o przesłanie faktury do piątku.", "&nbsp;", *SIGNATURE).split(b"\r\n\r\n", 1)[1]
PLAIN = part("text/plain; charset=utf-8", TEXT, "Content-Transfer-Encoding: 8bit\n")
RELATED = (
    b'Content-Type: multipart/related; boundary="REL"\n\n--REL\n'
    + part("text/html; charset=utf-8", HTML)
    + b"\n--REL\nContent-Type: image/png\nContent-ID: <logo>\n\nPNG\n--REL--\n"
)
ALTERNATIVES = [
    (
        multipart("alternative", PLAIN, part("text/html; charset=utf-8", HTML), subject="Faktura"),
        "Faktura: Proszę o przesłanie faktury do piątku.",
    ),
    (
        multipart("alternative", PLAIN, RELATED, subject="Faktura"),
        "Faktura: Proszę o przesłanie faktury do piątku.",
    ),
    # An empty bookmark marks nothing: the text alternative goes as it did.
    (
        multipart(
            "alternative",
            PLAIN,
            part("text/html; charset=utf-8", HTML.replace(b"<b>Jan Kowalski</b>", b"")),
            subject="Faktura",
        ),
        f"Faktura: {TEXT}",
    ),
]


@pytest.mark.parametrize(("raw", "sent"), ALTERNATIVES, ids=["html", "related html", "empty bookmark"])
def test_the_html_bookmark_says_where_the_text_alternatives_signature_starts(raw: bytes, sent: str) -> None:
    assert read_mail(raw).text == sent


@pytest.mark.parametrize(("raw", "sent"), CASES, ids=["empty", "nbsp only", "typed before", "signature"])
def test_only_a_bookmark_holding_its_paragraph_starts_the_signature(raw: bytes, sent: str) -> None:
    assert read_mail(raw).text == sent


async def test_through_smtp_the_phone_gets_the_typed_text_without_the_signature(tmp_path: Path) -> None:
    both = CASES + ALTERNATIVES
    assert await phone_texts(tmp_path, [raw for raw, _ in both]) == [sent for _, sent in both]


def test_a_bookmark_in_a_forwarded_message_cuts_nothing_from_the_text_alternative() -> None:
    text = (
        "From: Anna Nowak <anna@acme.pl>\nSent: Monday, December 7, 2026 9:00\nSubject: Zamówienie\n\n"
        "Proszę o 20 palet.\n\nAnna Nowak\nKierownik Działu Zakupów\nACME Sp. z o.o."
    )
    html = (
        "<html><body><div id=divRplyFwdMsg><p>From: Anna Nowak</p></div><div><p class=MsoNormal>Proszę o 20"
        ' palet.</p><p class=MsoNormal><a name="_MailAutoSig">Anna Nowak</a></p>'
        "<p class=MsoNormal>Kierownik Działu Zakupów</p></div></body></html>"
    )

    def sent(markup: str) -> str:
        plain = part("text/plain; charset=utf-8", text, "Content-Transfer-Encoding: 8bit\n")
        return read_mail(multipart("alternative", plain, part("text/html; charset=utf-8", markup))).text

    assert sent(html) == sent(html.replace("_MailAutoSig", "_Other"))
    assert "Anna Nowak\nKierownik Działu Zakupów" in sent(html)
