"""The sender's company signature ending the text with no sign-off above it is cut (R-1.3).

"Dostawa jutro o 9.\\n\\nJan Kowalski\\nKierownik Logistyki\\nACME Sp. z o.o.\\ntel. +48 601 222 333\\n
www.acme.pl" reached the phone whole: a signature went only below "Pozdrawiam" or "--". A last
paragraph with a full name first, a title or a company, and two contact details, all short lines and
no sentence, is now a company's signature. A name and phones alone ("Dzwoń do Jana.\\n\\nJan
Kowalski\\ntel. …\\nkom. …"), details below a line ending with ":" and a block with nothing above it
are what the person sends, and stay.

Such a block is cut only when it is the sender's own (its name the From's display name or in its
address's local part), and never below text pointing to someone to call: "Proszę zadzwonić do
kierownika budowy…\n\nJan Kowalski\nKierownik budowy\ntel. …" went out as its first sentence alone,
and so did a technician's contact sent by whoever booked him.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.notices import is_senders_name
from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.conftest import STAFF
from tests.test_signatures_footer_text import phone_got

TEXT = "Dostawa jutro o 9."
BLOCKS = [
    "Jan Kowalski\nKierownik Logistyki\nACME Sp. z o.o.\ntel. +48 601 222 333\nwww.acme.pl",
    "John Smith\nLogistics Manager\nACME Ltd\nM: +44 7700 900123\nwww.acme.co.uk",
    "Anna Nowak | ACME Sp. z o.o.\nDział Sprzedaży\ntel. 22 123 45 67, kom. 601 222 333",
]
SENDERS = ["Jan Kowalski <jan.kowalski@acme.pl>", '"Smith, John" <js@acme.co.uk>', "anowak@acme.pl"]


@pytest.mark.parametrize(("block", "sender"), zip(BLOCKS, SENDERS, strict=True))
def test_the_senders_company_signature_ending_the_text_is_cut(block: str, sender: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{block}", sender=sender)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


# Another's details (a colleague's, a technician's, a shared mailbox's sender) are what is sent.
OTHERS = ["", "Anna Nowak <anna.nowak@acme.pl>", "biuro@acme.pl", '"ACME Sprzedaż" <sprzedaz@acme.pl>']


@pytest.mark.parametrize("sender", OTHERS)
def test_a_signature_naming_someone_else_stays(sender: str) -> None:
    body = f"{TEXT}\n\n{BLOCKS[0]}"
    cleaned = clean_body(body, sender=sender)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


# Text above pointing to someone to call: the block is that person's details, even the sender's own.
POINTED = [
    "Proszę zadzwonić do kierownika budowy w sprawie dostawy.\n\nJan Kowalski\nKierownik budowy\n"
    "tel. 601 222 333\njan.kowalski@budowa.pl",
    "Kierowca będzie o 10. Kontakt w razie czego\n\nJan Kowalski\nACME Transport Sp. z o.o.\n"
    "kom. +48 601 222 333\nwww.acme-transport.pl",
    "The technician arrives at 9. Call him if the gate is closed.\n\nJan Kowalski\nService Engineer\n"
    "mobile +44 7700 900123\njan@acme.co.uk",
    "Prosze zadzwonic do niego jutro.\n\nJan Kowalski\nKierownik budowy\ntel. 601 222 333\nwww.budowa.pl",
]


@pytest.mark.parametrize("body", POINTED)
def test_details_the_text_points_to_stay(body: str) -> None:
    cleaned = clean_body(body, sender=SENDERS[0])
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


def test_whose_name_a_signature_gives() -> None:
    assert is_senders_name("Jan Kowalski | ACME", "Kowalski Jan <x@acme.pl>")
    assert is_senders_name("mgr inż. Łukasz Żółć", "lukasz.zolc@acme.pl")
    assert is_senders_name("Jan Kowalski [cid:image001.png]", "jkowalski@acme.pl")
    assert not is_senders_name("Jan Kowalski", "Jan Nowak <jan.nowak@acme.pl>")
    assert not is_senders_name("Jan Kowalski", "Biuro ACME <biuro@acme.pl>")


KEPT = [
    "Dzwoń do Jana.\n\nJan Kowalski\ntel. 601 222 333\nkom. 602 333 444",
    "Kontakt do kierowcy:\n\nJan Kowalski\nTransbud Sp. z o.o.\ntel. 601 222 333\nkom. 602 333 444",
    "Proszę o kontakt.\n\nJan Kowalski\nACME\ntel. 601 222 333",
    BLOCKS[0],
]


@pytest.mark.parametrize("body", KEPT)
def test_contact_details_the_person_sends_stay(body: str) -> None:
    cleaned = clean_body(body, sender=SENDERS[0])
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


async def test_through_smtp_the_phone_gets_the_text_alone(tmp_path: Path) -> None:
    # From "Jan Kowalski": his own block goes; a colleague's sent by anna@ stays.
    sent = [f"{TEXT}\n\n{BLOCKS[0]}", KEPT[0], POINTED[0]]
    assert await phone_got(tmp_path, sent, sender=f"Jan Kowalski <{STAFF}>") == [TEXT, KEPT[0], POINTED[0]]
    assert await phone_got(tmp_path / "anna", sent[:1]) == sent[:1]
