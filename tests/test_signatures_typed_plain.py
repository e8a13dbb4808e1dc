"""Signatures as an attack through a live daemon found them reaching the phone (R-1.3): Polish
sign-offs typed without Polish letters ("Z powazaniem", "Dziekuje i pozdrawiam") were not cut, and
a bare "--" line (no trailing space) cut everything below it, a list the person wrote too
("Agenda:\n--\n1. budzet" reached the phone as "Agenda:"). The guards of a sign-off block (list
items below it, its length) stay as they were, and hold for a bare "--" now; RFC 3676's "-- " with
its space still starts a signature whatever follows. Polish device footers were cut only for a fixed
list of devices ("Wysłane z mojego Huawei" reached the phone): any device name of up to four words
is taken now, as for "Sent from my".

At `clean_body`, as tests/test_signatures_real_mail.py reads bodies, and through a real SMTP client
into the running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body, only_signature
from tests.conftest import DOMAIN, free_port, mail, running_gateway
from tests.test_intake_hostile import HEAD, read_in_a_process
from tests.test_two_way import two_way_config

TEXT = "Spotkanie o 10:00 w sali 204."
PLAIN_SIGN_OFFS = [
    "Z powazaniem",
    "Z powazaniem,",
    "Dziekuje i pozdrawiam",
    "Dzieki, pozdrawiam",
    "Dziekujemy i pozdrawiam serdecznie",
    "Lacze pozdrowienia",
    "Lacze wyrazy szacunku",
    "Pozdrawiam serdecznie",
    "Pozdrawiam goraco",
    "Z POWAZANIEM",
    "Z powazaniem / Kind regards",
]


@pytest.mark.parametrize("sign_off", PLAIN_SIGN_OFFS)
def test_a_polish_sign_off_typed_without_polish_letters_is_cut(sign_off: str) -> None:
    for below in ("Jan Kowalski", "Jan Kowalski\nACME Sp. z o.o.\ntel. +48 22 123 45 67\nwww.acme.pl"):
        cleaned = clean_body(f"{TEXT}\n\n{sign_off}\n{below}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)
    assert only_signature(f"{sign_off}\nJan Kowalski")


PLAIN_KEPT = [
    # A list ending the text below the sign-off word: the person's text.
    "Na jutro:\nZ powazaniem\n- Anna: slajdy\n- Piotr: budzet\n- Ewa: sala",
    # Ten lines below it with no contact details: text, not a signature.
    "Tekst\nDziekuje i pozdrawiam\n" + "\n".join(f"linia {n}" for n in range(10)),
    # A long paragraph right below the word, no name between.
    "Dzien dobry,\nLacze pozdrowienia\n" + "Bardzo dlugi tekst o tym, co bedzie jutro na spotkaniu. " * 3,
    # Nothing above it: the message.
    "Z powazaniem\nJan Kowalski",
    # The word inside a sentence.
    "Tekst\nZ powazaniem traktujemy kazde zgloszenie\nDo jutra",
]


@pytest.mark.parametrize("body", PLAIN_KEPT)
def test_the_guards_of_a_sign_off_block_hold_for_the_plain_spellings(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body.strip(), False)


async def phone_texts(tmp_path: Path, bodies: list[str]) -> list[str]:
    """What the phones got for each body, sent without a subject to a number of its own."""
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    numbers = [f"6011234{n + 20:02d}" for n in range(len(bodies))]  # none refused or failed
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for number, body in zip(numbers, bodies, strict=True):
            assert (await gw.send(mail(f"{number}@{DOMAIN}", body))).error is None
        await gw.until(lambda: len(core.records) >= len(bodies))
    by_number = {str(r["destination"])[-9:]: str(r["text"]) for r in core.records}
    return [by_number[number] for number in numbers]


async def test_through_smtp_the_phone_gets_no_plain_spelled_sign_off(tmp_path: Path) -> None:
    bodies = [f"{TEXT}\n\n{sign_off}\nJan Kowalski" for sign_off in ("Z powazaniem", "Dzieki, pozdrawiam")]
    assert await phone_texts(tmp_path, bodies) == [TEXT, TEXT]


AGENDA = "Agenda:\n--\n1. budzet\n2. plan\n3. kadry"
SHORT_LINES = "\n".join(f"linia {n}" for n in range(10))


@pytest.mark.parametrize(
    "body",
    [
        AGENDA,
        "Zakupy:\n--\n- mleko\n- chleb",
        "Temat A\n--\n" + SHORT_LINES,  # longer than a sign-off block, no contact details
        "Temat A\n\n--\n\nTemat B\n--\n* sala 204\n* sala 101",
    ],
)
def test_a_bare_double_dash_above_a_list_or_a_long_block_is_the_persons_text(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)
    assert not only_signature(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Tekst\n--\nJan", "Tekst"),
        ("Tekst\n--\nJan Kowalski\nACME Sp. z o.o.\ntel. +48 22 123 45 67", "Tekst"),
        # Nine lines with contact details, and a disclaimer right below the delimiter: signatures.
        (
            "Tekst\n--\n"
            + "\n".join(
                [
                    "Jan",
                    "IT",
                    "ACME",
                    "ul. Prosta 1",
                    "00-001 Warszawa",
                    "tel. +48 22 123 45 67",
                    "kom. +48 601 123 456",
                    "fax +48 22 1",
                    "www.acme.pl",
                ]
            ),
            "Tekst",
        ),
        ("Tekst\n--\n" + "Ta wiadomość jest poufna i prawnie chroniona, proszę ją usunąć. " * 3, "Tekst"),
        # The delimiter with its space: everything below it, a list too.
        ("Agenda:\n-- \n1. budzet\n2. plan\n3. kadry", "Agenda:"),
        # A list below a bare "--", then a signature: the signature goes, the list stays.
        (AGENDA + "\n\nSent from my iPhone", AGENDA),
        (AGENDA + "\n-- \nJan", AGENDA),
    ],
)
def test_a_bare_double_dash_above_a_short_signature_still_cuts_it(body: str, expected: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (expected, True)


async def test_through_smtp_a_list_below_a_bare_double_dash_reaches_the_phone(tmp_path: Path) -> None:
    bodies = [AGENDA, "Tekst\n--\nJan Kowalski", "Agenda:\n-- \n1. budzet\n2. plan"]
    assert await phone_texts(tmp_path, bodies) == [AGENDA, "Tekst", "Agenda:"]


def test_a_body_of_bare_double_dashes_is_read_at_once() -> None:
    # Each bare "--" has too long a block below it until the last few: judged once each, not again
    # above every cut (that was some 3,600 passes over 33,000 lines). Within intake's 100,000 characters.
    body = b"Tekst\n" + b"--\n" * 33_000
    assert read_in_a_process(HEAD + b"\n" + body).startswith("hi: Tekst")


@pytest.mark.parametrize(
    "footer",
    [
        "Wysłane z mojego Huawei",
        "Wysłane z mojego Redmi Note 8 Pro",
        "Wysłano z mojego Xiaomi",
        "Wysłane z mojego Galaxy S21 Ultra 5G",
        "Wysłane z mojego smartfona Samsung Galaxy",
        "Wysłane z mojego iPhone’a",
    ],
)
def test_a_polish_device_footer_of_any_device_is_cut(footer: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{footer}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


@pytest.mark.parametrize(
    "body",
    [
        # More than four words after "mojego": a sentence, not a device.
        f"{TEXT}\nWysłane z mojego komputera w pracy, bo telefon padł.",
        f"{TEXT}\nWysłane z Outlooka do klienta.",
    ],
)
def test_a_sentence_that_begins_like_a_device_footer_stays(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


async def test_through_smtp_a_polish_device_footer_stays_off_the_phone(tmp_path: Path) -> None:
    bodies = [f"{TEXT}\n\nWysłane z mojego Huawei", f"{TEXT}\n\nWysłane z mojego Redmi Note 8 Pro"]
    assert await phone_texts(tmp_path, bodies) == [TEXT, TEXT]


# A mailing list's footer below RFC 3676's "-- ": nine short lines, one contact line, too long for a
# signature block, so a bare "--" above it fails against it; once the "-- " cut it is gone.
LIST_FOOTER = "\n".join(
    [
        "Lista dyskusyjna Zarzad",
        "Otrzymujesz te wiadomosc,",
        "bo zapisano Cie na liste.",
        "Aby sie wypisac,",
        "odpowiedz slowem STOP.",
        "Archiwum listy",
        "jest dostepne w intranecie.",
        "Moderator listy",
        "lista-zarzad@example.org",
    ]
)
SIGNED_ABOVE_A_LIST_FOOTER = f"Spotkanie jutro o 10.\n--\nAnna Kowalska\n-- \n{LIST_FOOTER}"


def test_a_bare_double_dash_above_a_list_footer_is_judged_again_below_its_cut() -> None:
    cleaned = clean_body(SIGNED_ABOVE_A_LIST_FOOTER)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie jutro o 10.", True)
    # Above the list footer a list below a bare "--" still stays.
    assert clean_body(f"{AGENDA}\n-- \n{LIST_FOOTER}").text == AGENDA


async def test_through_smtp_a_signature_above_a_list_footer_stays_off_the_phone(tmp_path: Path) -> None:
    assert await phone_texts(tmp_path, [SIGNED_ABOVE_A_LIST_FOOTER]) == ["Spotkanie jutro o 10."]


# "Wysłane z mojego" and any words: a device footer, or a sentence the person wrote. Everything below
# a signature line goes, so such a line cut what followed it ("Dzień dobry," alone reached the phone).
SENTENCES_LIKE_A_DEVICE_FOOTER = [
    "Dzień dobry,\nWysłane z mojego prywatnego adresu.\n"
    "Jutro nie będzie mnie w biurze, proszę dzwonić na 601 123 456.",
    "Dzień dobry,\nwysłane z mojego konta firmowego.\nProszę potwierdzić odbiór do piątku.",
]
DISCLAIMER = "Ta wiadomość jest poufna i prawnie chroniona, jeśli nie jest do Ciebie, usuń ją. " * 2


@pytest.mark.parametrize("body", SENTENCES_LIKE_A_DEVICE_FOOTER)
def test_a_sentence_like_a_device_footer_keeps_the_text_below_it(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Any device: at the end, above a disclaimer only, or above a "-- " list footer.
        (f"{TEXT}\n\nWysłane z mojego Huawei", TEXT),
        (f"{TEXT}\n\nWysłane z mojego Huawei\n\n{DISCLAIMER}", TEXT),
        (f"{TEXT}\n\nWysłane z mojego Redmi Note 8 Pro\n-- \n{LIST_FOOTER}", TEXT),
        # A known device word, with "mojego" or without, whatever stands below it.
        (f"{TEXT}\n\nWysłane z mojego Galaxy\nJan", TEXT),
        (f"{TEXT}\n\nWysłane z mojego smartfona Samsung\nJan Kowalski", TEXT),
        (f"{TEXT}\n\nWysłane z iPhone'a\nJan", TEXT),
    ],
)
def test_a_device_footer_still_ends_the_text(body: str, expected: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (expected, True)


async def test_through_smtp_a_sentence_like_a_device_footer_reaches_the_phone_whole(tmp_path: Path) -> None:
    # One SMS part each (`phone_texts` reads one record a number).
    kept = [
        "Hej,\nWysłane z mojego prywatnego adresu.\nJutro dzwoń na 601 123 456.",
        "Hej,\nwysłane z mojego konta firmowego.\nPotwierdź odbiór.",
    ]
    bodies = [*kept, f"{TEXT}\n\nWysłane z mojego Huawei\n\n{DISCLAIMER}"]
    assert await phone_texts(tmp_path, bodies) == [*kept, TEXT]
