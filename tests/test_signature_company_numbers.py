"""A company's numbers below the name are signature material (R-1.3), though no phones.

A register's number (KRS, NIP, REGON), a bank account, an office's hours and a department's phone
were contact lines to the long signature's rule (up to 14 lines with two of them) before numbers that
are no phones stopped being contact details; then a 9-14-line company signature reached the phone
whole, "Pozdrawiam" included, on every mail of that company. Below the name a paragraph of a
company's registers, account, hours or EU funding notice goes as well; the person's own sentence
there, with or without a number, stays.
"""

from __future__ import annotations

import pytest

from gateway.smtp.numbershapes import has_contact
from gateway.smtp.textclean import SIGNATURE, clean_body

TEXT = "Potwierdzam odbiór."
HEAD = (
    "Pozdrawiam\nJan Kowalski\nKierownik Sprzedaży\nDział Handlowy\nACME Sp. z o.o.\nul. Prosta 1\nWarszawa"
)
ACCOUNTS = "61 1090 1014 0000 0712 1981 2874\nPL27 1140 2004 0000 3002 0135 5387"

LONG_SIGNATURES = [
    f"{HEAD}\nKRS 0000123456\nNIP 5250000000\nREGON 012345678\nKapitał zakładowy 50 000 zł",
    f"{HEAD}\nmBank S.A.\n{ACCOUNTS}\nSWIFT BREXPLPW",
    f"{HEAD}\nPoniedziałek - piątek\n8.00 - 16.00\nSobota\n9.00 - 13.00",
    f"{HEAD}\nZamówienia: 601 123 456\nReklamacje: 22 123 45 67\nFaktury: 22 123 45 68",
]


@pytest.mark.parametrize("signature", LONG_SIGNATURES)
def test_a_long_company_signature_of_numbers_goes_whole(signature: str) -> None:
    assert 9 <= len(signature.splitlines()) - 1 <= 14
    cleaned = clean_body(f"{TEXT}\n\n{signature}")
    assert cleaned.text == TEXT
    assert SIGNATURE in cleaned.removed


def test_eleven_lines_of_the_persons_below_a_sign_off_with_one_number_stay() -> None:
    # One line with a number is no company's signature: the person's list below "Pozdrawiam" stays.
    lines = "\n".join(f"Punkt {n} do omówienia" for n in range(1, 11))
    body = f"{TEXT}\n\nPozdrawiam\n{lines}\nKonto 61 1090 1014 0000 0712 1981 2874"
    assert clean_body(body).text == body


DEPARTMENT_PHONES = [
    "Zamówienia: 601 123 456",
    "Reklamacje: 22 123 45 67",
    "InPost: 722 444 000",
    "Infolinia DPD 22 577 55 55",
    "Faktury: 22-123-45-68",
]


@pytest.mark.parametrize("line", DEPARTMENT_PHONES)
def test_a_phone_in_groups_after_a_departments_name_is_a_phone(line: str) -> None:
    # A department's or a carrier's name is a company's label for its phone; only an unbroken run
    # after it is a parcel's or an order's number.
    assert has_contact(line)
    body = f"{TEXT}\n\nPozdrawiam\nJan Kowalski\n\n{line}."
    assert clean_body(body).text == TEXT
    strip = f"ACME Sp. z o.o. | {line} | ul. Prosta 1, 00-001 Warszawa | Godziny pracy biura: pon.-pt. 8-16"
    assert len(strip) > 100
    assert clean_body(f"{TEXT}\n\nPozdrawiam\nJan Kowalski\n{strip}").text == TEXT


@pytest.mark.parametrize(
    "sentence",
    ["Zamówienie 612345678 wysłane.", "Paczka nr 612345678 jest w drodze.", "Kwota 1 234 567 do zapłaty."],
)
def test_a_parcels_or_an_orders_number_below_the_name_stays_the_persons(sentence: str) -> None:
    body = f"{TEXT}\n\nPozdrawiam\nJan\n\n{sentence}"
    assert clean_body(body).text == f"{TEXT}\n\n{sentence}"


COMPANY_PARAGRAPHS = [
    "ACME Sp. z o.o., KRS 0000123456, NIP 5250000000.",
    "ACME Sp. z o.o.\nKRS: 0000123456, NIP: 5250000000, REGON: 012345678.",
    "Rachunek bankowy: PKO BP 61 1090 1014 0000 0712 1981 2874.",
    "Numer konta: 61 1090 1014 0000 0712 1981 2874 (mBank).",
    "Bank Pekao S.A. 61 1090 1014 0000 0712 1981 2874.",
    "PL61 1090 1014 0000 0712 1981 2874.",
    "Dane do przelewu: ACME Sp. z o.o., 61 1090 1014 0000 0712 1981 2874.",
    "Biuro czynne pon.-pt. w godz. 8.00 - 16.00.",
    "Zamówienia przyjmujemy do godz. 14.00.",
    "Projekt współfinansowany przez Unię Europejską w latach 2014-2020.",
    "W latach 2020-2026 realizujemy projekt współfinansowany ze środków UE.",
    "Zarejestrowana w KRS pod numerem 0000123456.",
    # Read as phones before, no longer: a company's name without its legal form, a register's
    # abbreviation, a bank's name alone, an account in each currency
    "Firma ACME, NIP 525-000-00-00.",
    "Nr rej. BDO 000012345.",
    "ACME Sp. z o.o.\nmBank 61 1090 1014 0000 0712 1981 2874.",
    "Konto w PLN: PL61 1090 1014 0000 0712 1981 2874, w EUR: PL27 1140 2004 0000 3002 0135 5387.",
]


@pytest.mark.parametrize("paragraph", COMPANY_PARAGRAPHS)
def test_a_companys_paragraph_below_the_name_goes(paragraph: str) -> None:
    for signature in ("Pozdrawiam\nJan Kowalski", "Z poważaniem,\nAnna Nowak\nKierownik Sprzedaży"):
        cleaned = clean_body(f"{TEXT}\n\n{signature}\n\n{paragraph}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


@pytest.mark.parametrize(
    "sentence",
    [
        "Przelew proszę na konto PL61 1090 1014 0000 0712 1981 2874.",
        "Faktura na NIP 5250000000 jest gotowa.",
        "Jutro jestem w biurze od 8.00.",
        "Wniosek o dofinansowanie wysłałem wczoraj.",
        "Sklep był dziś otwarty krócej.",
    ],
)
def test_the_persons_sentence_of_an_account_or_hours_below_the_name_stays(sentence: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\nPozdrawiam\nJan\n\n{sentence}")
    assert cleaned.text == f"{TEXT}\n\n{sentence}"


LONG_COMPANY_LINES = [
    "Projekt współfinansowany ze środków Europejskiego Funduszu Rozwoju Regionalnego w ramach Programu"
    " Operacyjnego w latach 2014-2020",
    "Wpłaty prosimy kierować na rachunek ACME Sp. z o.o. w mBank S.A. 61 1090 1014 0000 0712 1981 2874"
    " z dopiskiem numeru faktury",
    "Biuro Obsługi Klienta ACME czynne od poniedziałku do piątku w godz. 8.00 - 16.00, w soboty w godz."
    " 9.00 - 13.00",
]


@pytest.mark.parametrize("line", LONG_COMPANY_LINES)
def test_a_long_company_line_under_the_name_goes_with_the_signature(line: str) -> None:
    # A long line without contact details is the person's text, which keeps the whole signature; a
    # company's notice is none.
    assert len(line) > 100
    text = "Potwierdzam odbiór towaru, faktura do końca tygodnia."
    for below in (
        f"Pozdrawiam\nJan Kowalski\n{line}",
        f"Pozdrawiam\nJan Kowalski\nACME Sp. z o.o.\n\n{line}",
    ):
        cleaned = clean_body(f"{text}\n\n{below}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (text, True)


def test_the_persons_long_line_naming_office_hours_stays() -> None:
    # The person asks in the first person: the line with a notice's words is the person's.
    line = (
        "Biuro czynne 9:00-17:00 od poniedziałku. Proszę o potwierdzenie, bo bez tego nie zdążymy z"
        " realizacją w tym tygodniu."
    )
    body = f"Spotkanie o 10.\n\nPozdrawiam\nJan\n{line}"
    assert clean_body(body).text == body
