"""Below a sign-off block, a disclaimer is what reads as one, not any long line (R-1.3).

A paragraph over 100 characters below "Pozdrawiam\\nJan" or a bare "--\\nJan" was taken for the
disclaimer and went with the signature, though the person wrote it ("... Pozdrawiam\\nJan\\n\\nDodatkowo
proszę pamiętać, że parking ..."); a disclaimer a mail server wraps at 72 columns was no disclaimer
at all, so below a company's signature its lines made the block too long to be a signature and
both reached the phone. A disclaimer is now a paragraph with two of the words such notices use
(`gateway.smtp.footers.is_disclaimer`), of any width.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.footers import is_disclaimer
from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import DISCLAIMER, WRAPPED_DISCLAIMER, phone_got

AFTERTHOUGHT = (
    "Dodatkowo proszę pamiętać, że parking przy biurze jest zamknięty do końca miesiąca, więc najlepiej "
    "przyjechać komunikacją miejską."
)
SIGNATURE_9 = (
    "Jan Kowalski\nKierownik IT\nACME Sp. z o.o.\nul. Prosta 1\n00-001 Warszawa\ntel. +48 22 123 45 67"
)
# Twelve lines as a server appends them: confidentiality, the register entry, personal data.
LONG_WRAPPED = (
    WRAPPED_DISCLAIMER + "\nAdministratorem Pani/Pana danych osobowych jest ACME Sp. z o.o.\n"
    "z siedzibą w Warszawie. Szczegóły: www.acme.pl/rodo\n"
    "Wiadomość została sprawdzona programem antywirusowym."
)


@pytest.mark.parametrize(
    "body",
    [
        f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{AFTERTHOUGHT}",
        f"Spotkanie o 10.\n\nRegards,\nJan Kowalski\n\n{AFTERTHOUGHT}",
        f"Spotkanie o 10.\n--\nJan\n\n{AFTERTHOUGHT}",
        f"Spotkanie o 10.\n--\n{AFTERTHOUGHT}",
    ],
)
def test_a_long_paragraph_of_the_persons_below_a_sign_off_stays(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


@pytest.mark.parametrize(
    "body",
    [
        f"Spotkanie o 10.\n\nPozdrawiam\n{SIGNATURE_9}\n\n{LONG_WRAPPED}",
        f"Spotkanie o 10.\n\nPozdrawiam\n{SIGNATURE_9}\n{LONG_WRAPPED}",
        f"Spotkanie o 10.\n--\n{SIGNATURE_9}\n\n{LONG_WRAPPED}",
        # What was cut before still is: a disclaimer of long lines, right below the name.
        f"Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\n\n{DISCLAIMER}",
        f"Spotkanie o 10.\nPozdrawiam\nJan Kowalski\n{DISCLAIMER}",
        f"Spotkanie o 10.\n--\n{DISCLAIMER}",
    ],
)
def test_a_disclaimer_of_any_width_goes_with_the_signature(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize(
    ("paragraph", "notice"),
    [
        (DISCLAIMER, True),
        (WRAPPED_DISCLAIMER, True),
        ("ACME Sp. z o.o., KRS 0000123456, NIP 123-456-78-90, kapitał zakładowy 50 000 zł.", True),
        ("Diese E-Mail ist vertraulich. Sind Sie nicht der richtige Adressat, löschen Sie sie.", True),
        (AFTERTHOUGHT, False),
        # One such word in the person's own text does not make a notice.
        ("Przesyłam poufne dane klienta, proszę ich nie drukować i oddzwonić do mnie jutro rano.", False),
    ],
)
def test_a_disclaimer_is_what_reads_as_one(paragraph: str, notice: bool) -> None:
    assert is_disclaimer(paragraph) is notice


async def test_through_smtp_an_afterthought_arrives_and_a_wrapped_disclaimer_does_not(tmp_path: Path) -> None:
    bodies = [
        f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{AFTERTHOUGHT}",
        f"Spotkanie o 10.\n\nPozdrawiam\n{SIGNATURE_9}\n\n{LONG_WRAPPED}",
    ]
    assert await phone_got(tmp_path, bodies) == [bodies[0], "Spotkanie o 10."]


GROUP_FOOTER = (
    'You received this message because you are subscribed to the Google Groups "Zarzad" group.\n'
    "To unsubscribe from this group and stop receiving emails from it, send an email to "
    "zarzad+unsubscribe@googlegroups.com."
)


@pytest.mark.parametrize("above", ["--", "Pozdrawiam\nJan", "Sent from my iPhone", "Wysłane z mojego Huawei"])
def test_a_mailing_lists_footer_goes_with_the_signature(above: str) -> None:
    # Its lines are long and no confidentiality clause: a notice still, as it was taken before.
    cleaned = clean_body(f"Spotkanie o 10.\n{above}\n\n{GROUP_FOOTER}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


# An HTML signature's table as its text part gives it: the company's details on one long line.
STRIP = (
    "ACME Sp. z o.o. | ul. Prosta 1, 00-001 Warszawa | tel. +48 22 123 45 67 | kom. +48 601 123 456 | "
    "www.acme.pl"
)


@pytest.mark.parametrize("above", ["--", "Pozdrawiam", "Sent from my iPhone\n", "Wysłane z mojego Huawei\n"])
def test_a_long_line_of_contact_details_is_the_signatures(above: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10.\n\n{above}\nJan Kowalski\n{STRIP}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


# Notices of one topic each, as companies append them between the signature and the disclaimer or
# alone: a personal data clause (RODO) and a note on printing, in both languages. Each held the words
# of one kind only, so it read as the person's paragraph, and the signature above it and the
# disclaimer below it reached the phone with it (up to 10 parts for "Spotkanie o 10.").
RODO = (
    "Zgodnie z art. 13 ust. 1 i 2 rozporządzenia Parlamentu Europejskiego i Rady (UE) 2016/679 (RODO) "
    "informujemy, że administratorem Pani/Pana danych osobowych jest ACME Sp. z o.o."
)
# A short one, as many append it: the clause's "2016/679" reads as a phone number, which made a long
# line of it a company's strip of contact details (`signatures._Measures`) and hid the fault.
RODO_SHORT = (
    "Informujemy, że administratorem Pani/Pana danych osobowych jest ACME Sp. z o.o. Dane są "
    "przetwarzane w celu realizacji zamówienia."
)
ECO = "Please consider the environment before printing this email."
ECO_PL = (
    "Zanim wydrukujesz tę wiadomość, zastanów się, czy naprawdę jest to konieczne. Dbajmy razem o "
    "środowisko naturalne."
)
ECO_PL_SHORT = "Dbajmy o środowisko. Nie drukuj tej wiadomości, jeśli nie musisz."


@pytest.mark.parametrize("notice", [RODO, RODO_SHORT, ECO, ECO_PL, ECO_PL_SHORT])
def test_a_one_topic_notice_reads_as_one(notice: str) -> None:
    assert is_disclaimer(notice)


@pytest.mark.parametrize(
    "notice", [RODO_SHORT, ECO_PL, f"{ECO_PL}\n\n{DISCLAIMER}", f"{RODO_SHORT}\n\n{DISCLAIMER}"]
)
@pytest.mark.parametrize("above", ["Pozdrawiam\n" + SIGNATURE_9, "Best regards,\nJan", "--\n" + SIGNATURE_9])
def test_a_one_topic_notice_goes_with_the_signature_above_it(above: str, notice: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10.\n\n{above}\n\n{notice}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize("notice", [RODO, ECO, ECO_PL])
def test_a_one_topic_notice_below_a_phones_footer_goes_with_it(notice: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10.\n\nSent from my iPhone\n\n{notice}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


async def test_through_smtp_a_signature_with_a_personal_data_clause_stays_off_the_phone(
    tmp_path: Path,
) -> None:
    body = f"Spotkanie o 10.\n\nPozdrawiam\n{SIGNATURE_9}\n\n{RODO_SHORT}\n\n{DISCLAIMER}"
    assert await phone_got(tmp_path, [body]) == ["Spotkanie o 10."]
