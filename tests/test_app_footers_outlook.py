"""Outlook's and Windows Mail's footers in the languages of a Polish company's staff (R-1.3): "Pobierz
Outlook dla Androida<https://aka.ms/…>", "Holen Sie sich Outlook für Android", "Gesendet von Outlook für
Android", "Uzyskaj aplikację Outlook dla systemu Android", "Wysłane z Poczty dla Windows" reached the
phone below the text (only "Get Outlook for Android" and "Pobierz Outlook dla Android" were known).
Each now ends the text as "Sent from my iPhone" does; a sentence that begins alike stays. Through a
running daemon whose built-in simulator records what each phone got."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

TEXT = "Dzwoń 601 234 567 po 16."
FOOTERS = [
    "Pobierz Outlook dla Androida<https://aka.ms/AAb9ysg>",
    "Holen Sie sich Outlook für Android<https://aka.ms/ghei36>",
    "Gesendet von Outlook für Android",
    "Von Outlook für iOS gesendet",
    "Uzyskaj aplikację Outlook dla systemu Android",
    "Pobierz aplikację Outlook dla iOS",
    "Wysłane z Poczty dla Windows",
    "Wysłano z Poczty dla Windows 10",
    "Gesendet von Mail für Windows 10",
]


@pytest.mark.parametrize("footer", FOOTERS)
def test_an_outlook_or_windows_mail_footer_ends_the_text(footer: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{footer}\n")
    assert (cleaned.text, cleaned.removed) == (TEXT, (SIGNATURE,))


@pytest.mark.parametrize(
    "line", ["Pobierz Outlook dla Androida i zaloguj się.", "Wysłane z poczty dla firmy ACME dotarło."]
)
def test_a_sentence_that_begins_alike_stays(line: str) -> None:
    body = f"{TEXT}\n\n{line}"
    assert clean_body(body).text == body


async def test_through_smtp_the_phone_gets_the_text_without_the_apps_footer(tmp_path: Path) -> None:
    mails = [mail(f"{TEXT}\r\n\r\n{footer}\r\n", subject="X") for footer in FOOTERS]
    link = '<a href="https://aka.ms/ghei36">Outlook für Android</a>'
    html = f"<p>{TEXT}</p><p>Holen Sie sich {link}</p>"
    mails.append(mail(f"<html><body>{html}</body></html>", subject="X", ctype="text/html; charset=utf-8"))
    assert await phone_texts(tmp_path, mails) == [f"X: {TEXT}"] * (len(FOOTERS) + 1)
