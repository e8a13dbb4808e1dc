"""A number shaped like a phone is not contact details (R-1.3).

A long line below "Pozdrawiam\\nJan" is the person's text, unless it holds contact details: a company's
strip of address and phones on one line. Any run of eight digits, spaces, dots, dashes and slashes read
as a phone, so a legal reference, an invoice's or an order's number ("RODO (Rozporządzenie 2016/679)",
"FV/2024/11/0012", "nr 2024/11/123456"), a date or an amount in the person's paragraph made it
signature material, and the paragraph was cut with the signature. A phone in a signature looks
otherwise ("+48 601 123 456", "tel. 22 123 45 67", "601-123-456"): that one still makes the line go.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

REFERENCES = [
    "zgodnie z art. 6 ust. 1 lit. b RODO (Rozporządzenie 2016/679)",
    "ustawa z dnia 10 maja 2018 r. (Dz.U.2018.1000)",
    "faktura FV/2024/11/0012",
    "zamówienie nr 2024/11/123456",
    "płatność z dnia 2024-11-15",
    "kwota 12 500.00 zł",
    "decyzja nr 2024.11.0001234",
]

# Phones as signatures write them, and what of each reads as a phone.
PHONES = [
    ("+48 601 123 456", ["+48 601 123 456"]),
    ("tel. 22 123 45 67", ["tel. 2", "123 45 67"]),
    ("601-123-456", ["601-123-456"]),
    ("(22) 123-45-67", ["(22) 123-45-67"]),
]


def _paragraph(reference: str) -> str:
    return (
        f"Proszę pamiętać, że {reference} wymaga od nas odpowiedzi w terminie siedmiu dni od dnia "
        "otrzymania tego pisma."
    )


def assert_stays_below_the_name(line: str) -> None:
    """`line`, the person's, below "Pozdrawiam\\nJan" after a blank line and right after it: the body
    arrives as written."""
    for body in (
        f"Dzień dobry,\nprzesyłam dokumenty.\n\nPozdrawiam\nJan\n\n{line}",
        f"Dzień dobry,\nprzesyłam dokumenty.\n\nPozdrawiam\nJan\n{line}",
    ):
        cleaned = clean_body(body)
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


@pytest.mark.parametrize("reference", REFERENCES)
def test_a_long_line_with_a_reference_below_the_name_stays(reference: str) -> None:
    assert_stays_below_the_name(_paragraph(reference))


@pytest.mark.parametrize(
    "line",
    [
        "Jan Kowalski | ACME Sp. z o.o. | ul. Prosta 1 | Warszawa | tel. +48 22 123 45 67 | kom. 601-123-456",
        "Jan Kowalski, Kierownik Działu Sprzedaży, ACME Sp. z o.o., Warszawa, +48 601 123 456, "
        "(22) 123-45-67",
        "Jan Kowalski, Kierownik Działu Sprzedaży, ACME Sp. z o.o., Warszawa, Polska, 601123456 lub "
        "22.123.45.67",
        "Jan Kowalski, Dyrektor Handlowy, ACME Sp. z o.o., ul. Prosta 1, Warszawa, Polska, komórka służbowa: "
        "601123456.",
        "John Smith, Senior Account Executive, ACME Corporation, 123 Main Street, New York, NY 10001, "
        "212.555.1234",
    ],
)
def test_a_long_line_of_a_companys_phones_still_goes(line: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\n{line}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        *PHONES,
        ("Rozporządzenie 2016/679", []),
        ("FV/2024/11/0012", []),
        ("nr 2024/11/123456", []),
        ("Dz.U.2018.1000", []),
        ("nr 2024.11.0001234", []),
        ("22.123.45.67 lub 601.123.456", ["22.123.45.67", "601.123.456"]),
        ("10.05.2018 r.", []),
        # A full stop after a phone, the US's dotted one.
        ("zadzwoń 601123456.", ["601123456"]),
        ("212.555.1234", ["212.555.1234"]),
        ("Mobile: 212.555.1234.", ["Mobile: 2"]),
        # A word after a phone that begins as a currency does: not an amount.
        ("601 123 456 Europe Office", ["601 123 456"]),
        ("+48 22 123 45 67 Złota 44", ["+48 22 123 45 67"]),
        ("1 250 000 złotych", []),
        ("1 250 000 euro", []),
        ("1 234 567,89 zł", []),
    ],
)
def test_what_reads_as_a_phone(text: str, found: list[str]) -> None:
    from gateway.smtp.numbershapes import CONTACT  # here: the other tests run against the code before it

    assert [m[0] for m in CONTACT.finditer(text)] == found


async def test_through_smtp_the_persons_line_with_an_order_number_arrives(tmp_path: Path) -> None:
    bodies = [
        f"Dzień dobry,\n\nPozdrawiam\nJan\n\n{_paragraph('zamówienie nr 2024/11/123456')}",
        "Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski | ACME Sp. z o.o. | ul. Prosta 1 | Warszawa | "
        "tel. +48 22 123 45 67 | kom. 601-123-456",
    ]
    assert await phone_got(tmp_path, bodies) == [bodies[0], "Spotkanie o 10."]


def test_a_phone_is_read_from_a_bounded_run() -> None:
    """The run PHONE reads from each start is bounded: when its check after the run fails ("12 12 12 …
    1/", "1 1 1 … zł"), the search starts again at each digit after a space, and a run read from there
    to the end of the line made the search quadratic (a 90 kB body held an intake worker 40 s). Its
    shape is asserted, not its time: what it consumes (the lookarounds read nothing) is at most
    15 digits with separators of up to 3 characters between them."""
    from re import _parser  # type: ignore[attr-defined]

    from gateway.smtp.numbershapes import PHONE

    assert _parser.parse(PHONE).getwidth()[1] <= 2 + 15 + 14 * 3


def test_a_100_kb_line_of_numbers_below_the_name_is_read() -> None:
    from gateway.smtp.intake import read_mail

    line = "12 " * 33_000 + "1/"
    body = f"Dzien dobry\r\n\r\nPozdrawiam\r\nJan\r\n\r\n{line}\r\n"
    head = "From: a@b.pl\r\nTo: 601123456@sms.example\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\n"
    assert read_mail((head + body).encode()).body == body.replace("\r\n", "\n").strip()
