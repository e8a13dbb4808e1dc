"""A company's automatic signature ending the text with no sign-off above it is cut (R-1.3).

"Dostawa jutro o 9.\\n\\nJan Kowalski\\nKierownik Logistyki\\nACME Sp. z o.o.\\ntel. +48 601 222 333\\n
www.acme.pl" reached the phone whole: a signature went only below "Pozdrawiam" or "--". A last
paragraph with a full name first, a title or a company, and two contact details, all short lines and
no sentence, is now a company's signature. A name and phones alone ("Dzwoń do Jana.\\n\\nJan
Kowalski\\ntel. …\\nkom. …"), details below a line ending with ":" and a block with nothing above it
are what the person sends, and stay.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

TEXT = "Dostawa jutro o 9."
BLOCKS = [
    "Jan Kowalski\nKierownik Logistyki\nACME Sp. z o.o.\ntel. +48 601 222 333\nwww.acme.pl",
    "John Smith\nLogistics Manager\nACME Ltd\nM: +44 7700 900123\nwww.acme.co.uk",
    "Anna Nowak | ACME Sp. z o.o.\nDział Sprzedaży\ntel. 22 123 45 67, kom. 601 222 333",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_a_company_signature_ending_the_text_is_cut(block: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{block}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


KEPT = [
    "Dzwoń do Jana.\n\nJan Kowalski\ntel. 601 222 333\nkom. 602 333 444",
    "Kontakt do kierowcy:\n\nJan Kowalski\nTransbud Sp. z o.o.\ntel. 601 222 333\nkom. 602 333 444",
    "Proszę o kontakt.\n\nJan Kowalski\nACME\ntel. 601 222 333",
    BLOCKS[0],
]


@pytest.mark.parametrize("body", KEPT)
def test_contact_details_the_person_sends_stay(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


async def test_through_smtp_the_phone_gets_the_text_alone(tmp_path: Path) -> None:
    assert await phone_got(tmp_path, [f"{TEXT}\n\n{BLOCKS[0]}", KEPT[0]]) == [TEXT, KEPT[0]]
