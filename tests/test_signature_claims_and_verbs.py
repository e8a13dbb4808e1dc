"""Below the name, a person's sentence is told from a company's claim by its shape (R-1.3).

A person's sentence below "Pozdrawiam\\nJan" was kept only with a word of the person's ("oddzwonię",
"jutro", "I"), and a company's tagline was two of a slogan's words: "Nasz partner potwierdza termin."
(two: "nasz", "partner") and "Nasz lider zadzwoni." were cut as taglines, and in the name's paragraph
"Spotkanie przesunięte na 12:00." or "Faktura w załączniku." went with the signature, the person's
words lost. Its verb ("potwierdza", "zadzwoni"), a participle saying what became of a thing
("przesunięte", "przyjęta"), the hour of an arrangement, an attachment or a short answer ("Termin
aktualny.") make it the person's; a title has none ("Inspektor ochrony danych.", "Kierownik zmiany."),
nor a company's habit ("Zamówienia realizowane w 24h.", "Technologia, która inspiruje.").

A company's claims reached the phone at the cost of a part: a certificate with its standard ("Certyfikat
ISO 9001:2015."), a prize with its year ("Laureat Gazel Biznesu 2023."), the notice against printing
("Save paper - do not print."), a promise of constancy ("Zawsze na czas.") and its copyright notice.
Without the standard or the year a prize is the person's news ("Nagroda dla zespołu!"), so is one whose
year the sentence goes on from ("Laureat konkursu 2024 to nasz Tomek!"), the word "copyright" without
a notice's sign or year ("Please check the copyright on the photos."), and a person's word keeps any
of them ("Please don't print it yet.").

An office's hours are a company's notice below the name, and the person's message above it; below the
name too when the person names today or tomorrow ("Jutro biuro czynne 9:00-17:00."), which a notice
printed under every mail cannot, or speaks ("…, zapraszam.").

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

SIGN_OFFS = ["Pozdrawiam\nJan", "Regards,\nJohn Smith", "Z poważaniem\nJan Kowalski\nACME Sp. z o.o."]

PERSONS_WITHOUT_I = [
    "Nasz zespół potwierdza termin.",
    "Spotkanie przesunięte na 12:00.",
    "Twoja oferta przyjęta.",
    "Zamówienie zrealizowane.",
    "Dostawa opóźniona o dzień.",
    "Klient akceptuje warunki.",
    "Nasz kierowca dojedzie o 14.",
    "Faktura w załączniku.",
    "Your quote attached.",
    "Termin aktualny.",
    "Wszystko w porządku.",
]


@pytest.mark.parametrize("sentence", PERSONS_WITHOUT_I)
def test_the_persons_sentence_in_the_names_paragraph_stays(sentence: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n{sentence}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


@pytest.mark.parametrize(
    "sentence", ["Nasz partner potwierdza termin.", "Nasz lider zadzwoni.", *PERSONS_WITHOUT_I]
)
def test_the_persons_sentence_with_a_verb_is_no_tagline(sentence: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n\n{sentence}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


@pytest.mark.parametrize(
    "claim",
    [
        "Certyfikat ISO 9001:2015.",
        "ISO 9001:2015 certified.",
        "ISO 9001 certified company.",
        "Laureat Gazel Biznesu 2023.",
        "Diamenty Forbesa 2022.",
        "Save paper - do not print.",
        "Zawsze na czas.",
        "Zawsze w terminie.",
        "Always on time.",
        "Wszystkie prawa zastrzeżone.",
        "Copyright © 2024 ACME Sp. z o.o.",
        "(c) 2024 ACME S.A.",
        "Gazele Biznesu 2021, 2022, 2023.",
    ],
)
def test_a_companys_claim_below_the_name_goes(claim: str) -> None:
    for sign_off in SIGN_OFFS:
        for gap in ("\n\n", "\n"):
            cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}{gap}{claim}")
            assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize(
    "sentence",
    [
        "Nagroda dla zespołu!",
        "Medal odbiera prezes.",
        "Zwycięzca przetargu wybrany.",
        "Certyfikat ważny do 2025.",
        "Certyfikat wysłałem wczoraj.",
        "Please don't print it yet.",
        "Zawsze chętnie.",
        "Zawsze na czas, obiecuję.",
        # The word "copyright" is no notice without a notice's shape (the sign, a year).
        "Please check the copyright on the photos before posting.",
        "Zdjęcia mają copyright, nie publikuj ich.",
        # A prize's year the sentence goes on from, or an exclaimed one, is the person's news.
        "Laureat konkursu 2024 to nasz Tomek!",
        "Laureat konkursu 2024 to nasz Tomek.",
        "Nagroda 2023 dla naszego działu!",
    ],
)
def test_the_persons_sentence_with_a_claims_words_stays(sentence: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n\n{sentence}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{sentence}", True)


@pytest.mark.parametrize(
    "line",
    [
        "Inspektor ochrony danych.",
        "Kierownik zmiany.",
        "Dział obsługi strony.",
        "Lider uznany w branży.",
        "Marka rozpoznawana na świecie.",
        "Zamówienia realizowane w 24h.",
        "Technologia, która inspiruje.",
        "Infolinia czynna od 8 do 20.",
        "Sekretariat: pon.-pt. 8.00 - 16.00.",
        "Biuro czynne 9:00-17:00",
        "Biuro czynne 9:00-17:00.",
    ],
)
def test_a_title_or_a_companys_habit_in_the_names_paragraph_still_goes(line: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}\n{line}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize(
    "hours",
    [
        "Jutro biuro czynne 9:00-17:00.",
        "Dziś biuro czynne do 14:00.",
        "Biuro czynne 9:00-17:00, zapraszam.",
        "Tomorrow office hours 9:00-13:00.",
    ],
)
def test_the_persons_word_of_todays_hours_below_the_name_stays(hours: str) -> None:
    for sign_off in SIGN_OFFS:
        for gap in ("\n\n", "\n"):
            cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}{gap}{hours}")
            assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Spotkanie o 10.\n\n{hours}", True)


@pytest.mark.parametrize(
    "hours",
    [
        "Biuro czynne pon.-pt. 8.00 - 16.00.",
        "Zamówienia przyjmujemy do godz. 14.00, w piątek do 12.00.",
        "Office hours: Mon-Fri 9:00-17:00.",
        "Biuro otwarte pon.-pt. 9:00-17:00, sob. 10:00-14:00.",
    ],
)
def test_an_offices_standing_hours_below_the_name_go(hours: str) -> None:
    for sign_off in SIGN_OFFS:
        for gap in ("\n\n", "\n"):
            cleaned = clean_body(f"Spotkanie o 10.\n\n{sign_off}{gap}{hours}")
            assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)


@pytest.mark.parametrize("hours", ["Biuro czynne 9:00-17:00", "W sobotę biuro czynne 9:00-17:00."])
def test_office_hours_above_the_name_are_the_persons_message(hours: str) -> None:
    for sign_off in SIGN_OFFS:
        cleaned = clean_body(f"Dzień dobry,\n\n{hours}\n\n{sign_off}\ntel. 22 123 45 67")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (f"Dzień dobry,\n\n{hours}", True)


async def test_through_smtp_the_person_arrives_and_the_claims_stay_off_the_phone(tmp_path: Path) -> None:
    bodies = [
        "Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\nSpotkanie przesunięte na 12:00.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nNasz partner potwierdza termin.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan Kowalski\nACME Sp. z o.o.\n\nCertyfikat ISO 9001:2015.",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nLaureat Gazel Biznesu 2023.\n\nSave paper - do not print.",
        "Biuro czynne 9:00-17:00\n\nPozdrawiam\nJan",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nJutro biuro czynne 9:00-17:00.",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Spotkanie o 10.\n\nSpotkanie przesunięte na 12:00.",
        "Spotkanie o 10.\n\nNasz partner potwierdza termin.",
        "Spotkanie o 10.",
        "Spotkanie o 10.",
        "Biuro czynne 9:00-17:00",
        "Spotkanie o 10.\n\nJutro biuro czynne 9:00-17:00.",
    ]
