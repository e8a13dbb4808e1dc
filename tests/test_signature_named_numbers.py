"""A number that is no phone does not make the person's line signature material (R-1.3).

Below "Pozdrawiam\\nJan" a long line of the person's stays unless it holds contact details, and a short
sentence stays when it holds none. A bank account in its groups of four ("PL61 1090 1014 0000 0712
1981 2874": its last groups read as a phone), a PESEL, a NIP or a REGON, a parcel's or an order's
nine digits, a range of dates, hours or years and an amount with a currency before it read as phones,
and the person's line went with the signature. A phone in a signature looks otherwise ("+48 601 123
456", "tel. 22 123 45 67", "601-123-456"): that line still goes. A parcel's number has a mobile
phone's nine digits: the word before it tells ("paczka 612345678 w drodze", "kurier 612345678").

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signature_number_shapes import PHONES, assert_stays_below_the_name
from tests.test_signatures_footer_text import phone_got

# Each in a long line of the person's (over 100 characters) and in a short sentence of its own.
NUMBERS = [
    "na konto PL61 1090 1014 0000 0712 1981 2874",
    "na nr konta 61 1090 1014 0000 0712 1981 2874",
    "dla osoby o numerze PESEL 85010112345",
    "dla PESEL-u 85010112345",
    "na firmę z NIP 525-000-00-00",
    "na firmę z NIP: 5250000000",
    "dla REGON 012345678",
    "dla paczki 612345678 w drodze",
    "do zamówienia nr 612345678",
    "w dniach 12.11.2026-15.11.2026",
    "w godzinach 9:00-17:00",
    "od 2026-11-12 – 2026-11-15",
    "od 12.11 - 15.11.2026",
    "od 2026-11-12 9:00 - 2026-11-15 17:00",
    "w kwocie 1 234 567,89 zł",
    "w kwocie EUR 1 234 567",
    "w latach 2020 - 2026",
]


def _long(number: str) -> str:
    return (
        f"Proszę pamiętać o sprawie {number}, bo inaczej nie zdążymy z realizacją w tym tygodniu, dziękuję."
    )


@pytest.mark.parametrize("number", NUMBERS)
def test_the_persons_long_line_with_a_number_below_the_name_stays(number: str) -> None:
    line = _long(number)
    assert len(line) > 100
    assert_stays_below_the_name(line)


@pytest.mark.parametrize("number", NUMBERS)
def test_the_persons_sentence_with_a_number_below_the_name_stays(number: str) -> None:
    sentence = f"Pamiętaj o sprawie {number}."
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{sentence}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


@pytest.mark.parametrize(
    "line",
    [
        "Zadzwoń do mnie jutro, tel. 22 123 45 67.",
        "Kurier 612345678 dzwoni przed przyjazdem.",
        "Mój numer to +48 601 123 456.",
        "Pisz na 601-123-456, oddzwonię.",
        "Numer 601 123 456 działa do 17:00.",
    ],
)
def test_a_sentence_with_a_phone_below_the_name_still_goes(line: str) -> None:
    """A phone in the paragraph below the name makes it contact details, as before."""
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{line}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


def test_a_companys_register_entries_and_phones_still_go() -> None:
    company = (
        "Jan Kowalski\nACME Sp. z o.o.\nul. Prosta 1, 00-001 Warszawa\n"
        "NIP: 525-000-00-00 | REGON: 012345678 | KRS: 0000123456\ntel. +48 22 123 45 67\nkom. 601 123 456\n"
        "www.acme.pl\nKonto: 61 1090 1014 0000 0712 1981 2874"
    )
    for body in (
        f"Spotkanie o 10.\n\nPozdrawiam\n{company}",
        f"Spotkanie o 10.\n\nPozdrawiam\n{company}\n\nNIP 5250000000.",
    ):
        cleaned = clean_body(body)
        assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize(
    "entry",
    [
        "NIP 525-000-00-00.",
        "KRS 0000123456, NIP PL5250000000.",
        "Konto: mBank 61 1090 1014 0000 0712 1981 2874.",
        "Nr konta: 61 1090 1014 0000 0712 1981 2874.",
        "IBAN PL61 1090 1014 0000 0712 1981 2874.",
    ],
)
def test_a_companys_entry_in_a_paragraph_of_its_own_still_goes(entry: str) -> None:
    """With its numbers no longer contact details, a company's register entry or bank account below the
    name, ending with a full stop, is still no sentence of the person's."""
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\nACME Sp. z o.o.\n\n{entry}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize("number", ["61 1090 1014 0000 0712 1981 2874", "85010112345", "12.11.2026"])
def test_a_number_typed_below_a_phones_footer_stays(number: str) -> None:
    """A line of one number below "Sent from my iPhone" read as a line of contact details, signature
    material below the footer, and went with it: a bank account, a PESEL or a date is the answer."""
    cleaned = clean_body(f"Numer konta?\n\nSent from my iPhone\n\n{number}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Numer konta?\n\n{number}", True)
    cleaned = clean_body("Numer konta?\n\nSent from my iPhone\n\nJan Kowalski\n+48 601 123 456")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Numer konta?", True)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        *PHONES,
        ("0048 601 123 456", ["0048 601 123 456"]),
        ("48601123456", ["48601123456"]),  # a phone with its country code, not a PESEL
        ("kurier 612345678", ["612345678"]),
        ("PL61 1090 1014 0000 0712 1981 2874", []),
        ("61 1090 1014 0000 0712 1981 2874", []),
        ("DE89 3704 0044 0532 0130 00", []),
        ("85010112345", []),
        ("525-000-00-00", []),
        ("525-00-00-000", []),  # not a postal code's "00-000"
        ("ul. Prosta 1, 00-001 Warszawa", ["00-001"]),
        ("1 250 000 £", []),
        ("zł 601 123 456", []),
        ("NIP: 5250000000", []),
        ("REGON 012345678", []),
        ("Numer paczki: 612345678", []),
        ("paczka o numerze 612345678", []),
        ("#612345678", []),
        ("12.11 - 15.11.2026", []),
        ("9.00 - 17.00 12.11", []),
        ("2026-11-12 9:00 - 2026-11-15 17:00", []),
        ("w latach 2020-2026", []),
        ("2020 - 2026 - 2030", []),
        ("EUR 1 234 567", []),
        ("€ 1 234 567", []),
        ("1 234 567.89", []),
        ("34 000 000 mieszkańców", []),
    ],
)
def test_what_reads_as_contact_details(text: str, found: list[str]) -> None:
    from gateway.smtp.numbershapes import contact_details  # here: the other tests run against the code before

    assert list(contact_details(text)) == found


async def test_through_smtp_the_persons_line_with_an_account_arrives(tmp_path: Path) -> None:
    bodies = [
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nPrzelew proszę na konto PL61 1090 1014 0000 0712 1981 2874.",
        f"Dzień dobry,\n\nPozdrawiam\nJan\n\n{_long('dla paczki 612345678 w drodze')}",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nSzkolenie trwa 12.11.2026-15.11.2026, 9:00-17:00.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\nACME Sp. z o.o.\nNIP 525-000-00-00\n"
        "tel. +48 22 123 45 67",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Spotkanie o 10.\n\nPrzelew proszę na konto PL61 1090 1014 0000 0712 1981 2874.",
        bodies[1],
        "Spotkanie o 10.\n\nSzkolenie trwa 12.11.2026-15.11.2026, 9:00-17:00.",
        "Spotkanie o 10.",
    ]
