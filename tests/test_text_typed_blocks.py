"""A person's own lines that look like a header block stay (R-1.3). In a reply, lines under a typed
rule of dashes with From/To/Date-like labels ("Data: 14.12.2026 / Od: 8:00 / Do: 16:00", a flight's
"From: Warszawa WAW 10:00") went as a quote with all below them: Outlook's own block names its sender
first, by name or address, and no recipient by a time. In a new mail (no reply headers nor prefix), a
parcel's "Nadawca: ACME, biuro@acme.pl / Adresat: … / Data: …" cut the pickup time and phone number
below it: with no subject line it is no quote's header. Through the intake's reading of a whole mail."""

from __future__ import annotations

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textclean import collapse
from tests.test_intake import mail

REPLY = "In-Reply-To: <a1@acme.pl>\n"
IN_A_REPLY = [
    "Zmiana dyżuru:\n-----\nData: 14.12.2026\nOd: 8:00\nDo: 16:00\n\nProszę potwierdzić do jutra.",
    "New delivery window\n-----\nDate: 14.12.2026\nFrom: 8:00\nTo: 16:00\n\nPlease confirm by tomorrow.",
    "Lot zarezerwowany:\n-----\nFrom: Warszawa WAW 10:00\nTo: Londyn LHR 12:00\nDate: 14.12.2026\n\n"
    "Odbiór z lotniska, kierowca 601 222 333.",
    "Zmiana:\n-----\nOd: Jan Kowalski\nData: 14.12.2026\nDo: 16:00\n\nProszę potwierdzić.",
]
IN_A_NEW_MAIL = [
    "Proszę nadać paczkę:\n-----\nNadawca: ACME, biuro@acme.pl\nAdresat: Jan Nowak, ul. Długa 5, Kraków\n"
    "Data: 8.12.2026\n\nKurier odbierze o 10:00, tel. 601 222 333.",
    "Proszę nadać paczkę:\nNadawca: ACME, biuro@acme.pl\nAdresat: Jan Nowak, ul. Długa 5, Kraków\n"
    "Data: 8.12.2026\n\nKurier odbierze o 10:00, tel. 601 222 333.",
    "Notatka\nOd: Jan Kowalski <jan@acme.pl>\nDo: Anna Nowak <anna@acme.pl>\nData: 8.12.2026\n\n"
    "Proszę o akceptację urlopu 14-18.12.",
    "Nadawca: ACME, biuro@acme.pl\nAdresat: Jan Nowak, ul. Długa 5, Kraków\nData: 8.12.2026\n\n"
    "Kurier odbierze o 10:00.",
]
OLD = "\n\nStara treść oferty.\n"
# Outlook's own blocks still head a quote: in a reply under dashes, the company's loose one too.
QUOTES = [
    ("-----\nOd: Jan Kowalski\nData: czwartek, 3 grudnia 2026 10:00\nDo: Anna Nowak\nTemat: Oferta", REPLY),
    ("-----\nFrom: Jan <jan@acme.pl>\nSent: Monday, December 7, 2026 10:00 AM\nTo: Anna\nSubject: O", ""),
    ("From: Jan <jan@acme.pl>\nSent: Monday, December 7, 2026 10:00 AM\nTo: Anna\nSubject: Oferta", ""),
]


@pytest.mark.parametrize("body", IN_A_REPLY)
def test_a_persons_lines_under_dashes_in_a_reply_stay(body: str) -> None:
    assert read_mail(mail(body, subject="Re: dyżur", headers=REPLY)).body == collapse(body.split("\n"))


@pytest.mark.parametrize("body", IN_A_NEW_MAIL)
def test_a_header_like_block_in_a_new_mail_stays_with_the_lines_below(body: str) -> None:
    assert read_mail(mail(body, subject="Paczka")).body == collapse(body.split("\n"))


@pytest.mark.parametrize(("block", "headers"), QUOTES)
def test_outlooks_blocks_still_head_a_quote(block: str, headers: str) -> None:
    body = f"Proszę oddzwonić.\n\n{block}{OLD}"
    assert read_mail(mail(body, subject="Oferta", headers=headers)).body == "Proszę oddzwonić."
