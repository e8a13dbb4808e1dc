"""A disclaimer, a register footer or a personal data clause with no sign-off word above it (R-1.3).

Below "Pozdrawiam\\nJan" such a notice went with the signature; below a name alone, a rule or the
person's text it was sent whole ("Dostawa jutro o 9." and a confidentiality clause: 5 UCS-2 parts),
and so was the automatic signature above it. A notice reads as one without a sign-off when it speaks
to a wrong recipient in three kinds of a notice's words, names the personal data's controller, or is a
company's register entry; it goes with the footer below it and the name block above it, never when
nothing of the person's stands above it, and a person's own sentence with such words stays.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import reply_to, smtp
from tests.test_signatures_footer_text import phone_got

TEXT = "Dostawa jutro o 9."
PL = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Odbiorcą może być jedynie jej adresat z "
    "wyłączeniem dostępu osób trzecich. Jeżeli nie jest Pan/Pani adresatem niniejszej wiadomości, jej "
    "rozpowszechnianie, kopiowanie lub inne działanie o podobnym charakterze jest prawnie zabronione."
)
PL_WRAPPED = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Odbiorcą może\n"
    "być jedynie jej adresat z wyłączeniem dostępu osób trzecich. Jeżeli nie\n"
    "jest Pan/Pani adresatem niniejszej wiadomości, jej rozpowszechnianie\n"
    "jest prawnie zabronione."
)
EN = (
    "This e-mail and any attachments are confidential and may be legally privileged. If you are not "
    "the intended recipient, please notify the sender immediately and delete it."
)
REGISTER = (
    "ACME Sp. z o.o. z siedzibą w Warszawie, ul. Prosta 1, wpisana do rejestru przedsiębiorców KRS pod "
    "numerem 0000123456, NIP 1234567890, kapitał zakładowy 50 000 zł."
)
COURT = (
    "Sąd Rejonowy dla m.st. Warszawy, XII Wydział Gospodarczy KRS, KRS 0000123456, NIP 1234567890, "
    "kapitał zakładowy 50 000 zł"
)
RODO = "Administratorem danych osobowych jest ACME Sp. z o.o., więcej: acme.pl/rodo"

CUT = [
    f"{TEXT}\n\n{PL}",
    f"{TEXT}\n\nJan Kowalski\n\n{PL}",
    f"{TEXT}\n\n________________________________\n{PL}",
    f"{TEXT}\n\n----------\n{PL}",
    f"{TEXT}\n\n{PL}\n\n{EN}",
    f"{TEXT}\n\n{PL_WRAPPED}",
    f"{TEXT}\n\n{EN}",
    f"{TEXT}\n\nJohn Smith\nACME Ltd\n\n{EN}",
    f"{TEXT}\n\n{REGISTER}",
    f"{TEXT}\n\nJan Kowalski\nACME Sp. z o.o., ul. Prosta 1, 00-001 Warszawa\n{COURT}",
    f"{TEXT}\n\nJan Kowalski\nKierownik Logistyki | ACME Sp. z o.o.\ntel. 601 222 333\n{PL}",
    f"{TEXT}\n{RODO}",
    # The footer below the notice goes with it: contact details, another notice.
    f"{TEXT}\n\n{PL}\n\nwww.acme.pl\n\n{REGISTER}",
]


@pytest.mark.parametrize("body", CUT, ids=[f"cut-{n}" for n in range(len(CUT))])
def test_a_notice_with_no_sign_off_above_it_is_cut(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


KEPT = [
    # A person's own sentences with a notice's words.
    f"{TEXT}\n\nProszę nie przekazywać tej wiadomości dalej, zawiera poufne dane osobowe klientów, a ich "
    "rozpowszechnianie jest zabronione.",
    f"{TEXT}\n\nProszę o fakturę na firmę ACME Sp. z o.o., NIP 1234567890, z siedzibą w Warszawie przy ul. "
    "Prostej 1.",
    f"{TEXT}\n\nPrzesyłam poufne dane klienta, proszę ich nie drukować i oddzwonić do mnie jutro rano.",
    f"{TEXT}\n\nAdministratorem danych osobowych jest nasza firma i proszę pamiętać o RODO przy wysyłce, "
    "dane osobowe tylko w załączniku szyfrowanym.",
    # Nothing of the person's above it: what was sent is kept.
    PL,
    # Right below a sign-off word with no name between, the person's text (`signatures._sign_off_start`).
    f"{TEXT}\n\nBest wishes!\n\n{PL}",
]


@pytest.mark.parametrize("body", KEPT, ids=[f"kept-{n}" for n in range(len(KEPT))])
def test_what_the_person_wrote_stays(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


def test_the_persons_text_stays_around_the_notice() -> None:
    # The name alone above it is what the person sent; a postscript below it is written to be read.
    assert clean_body(f"Jan Kowalski\n\n{PL}").text == "Jan Kowalski"
    assert clean_body(f"{TEXT}\n\n{PL}\n\nPS. Sala 204.").text == f"{TEXT}\n\nPS. Sala 204."


async def test_through_smtp_the_phone_gets_the_text_without_the_notice(tmp_path: Path) -> None:
    bodies = [
        f"{TEXT}\n\nJan Kowalski\n\n{PL}",
        f"{TEXT}\n\nJan Kowalski\nACME Sp. z o.o., ul. Prosta 1, 00-001 Warszawa\n{COURT}",
        f"{TEXT}\n\n{EN}",
        f"{TEXT}\n\nProszę o fakturę na firmę ACME Sp. z o.o., NIP 1234567890, z siedzibą w Warszawie.",
    ]
    assert await phone_got(tmp_path, bodies) == [TEXT, TEXT, TEXT, bodies[3]]


async def test_a_premium_clients_answer_reaches_the_phone_without_its_disclaimer(tmp_path: Path) -> None:
    """A premium answer is one SMS: the client's disclaimer took it, "Przyjęte, wysyłka jutro." and
    the disclaimer's start cut to 70 UCS-2 characters."""
    answer = "Przyjęte, wysyłka jutro."
    async with premium(tmp_path) as w:
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, f"{answer}\n\n{PL}"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == answer
        assert w.gw.store.db.conn.execute("SELECT cut FROM premium_answers").fetchall() == [(0,)]


def test_a_body_of_many_notices_between_paragraphs_is_cut_in_one_pass() -> None:
    # A recursion per notice went past Python's depth at about a thousand of them.
    body = f"{TEXT}\n\n" + f"{PL}\n\nTekst osoby.\n\n" * 1500
    cleaned = clean_body(body)
    assert cleaned.text == f"{TEXT}\n\n" + "\n\n".join(["Tekst osoby."] * 1500)
