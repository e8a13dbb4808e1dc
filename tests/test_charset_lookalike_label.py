"""Windows-1250 and ISO-8859-2 labels on each other's bytes (R-1.6). The two differ in a few Polish
letters (ą ś ź Ą Ś Ź), each the other's symbol (± ¶ Ľ ¦ ¬), and both read every byte from 0xA0 up
without an error. A guess between them was weighed, a label trusted: ISO-8859-2 bytes labelled
windows-1250 reached the phone as "Proszę o ¶cisł± współpracę". A label of the pair is now weighed as
a guess is: the reading that makes Polish letters wins, a tie keeps the label, and a symbol where a
symbol belongs ("5 ±0,2", "©") keeps it too. Only a sign of the other's bytes in the label's own reading
puts it to the weighing: Czech and Slovene in ISO-8859-2 read as more Polish under windows-1250
("Prosím, pošlete … Šárka" went out as "poąlete … ©árka"), and are as labelled. Through a running
daemon whose built-in simulator records what each phone got."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

POLISH = "Proszę o ścisłą współpracę, ąę ŚŹ źś"
CZECH = "Prosím, pošlete fakturu do pátku. Děkuji, Šárka"
SLOVENE = "Račun še danes pošljem, Živa"
SLOVAK = "Ľubica Nováková"
LABELS = [("iso-8859-2", "iso-8859-2"), ("cp1250", "windows-1250")]
CASES = [
    (POLISH.encode("iso-8859-2"), "windows-1250", POLISH),
    ("Będą tu wszyscy, także Ala.".encode("cp1250"), "iso-8859-2", "Będą tu wszyscy, także Ala."),
    # As labelled: the symbols where symbols belong, and letters both readings share.
    ("Dawka 5 ±0,2 mg, Paweł".encode("cp1250"), "windows-1250", "Dawka 5 ±0,2 mg, Paweł"),
    ("Łódź © 2026 «ACME» ±5".encode("cp1250"), "windows-1250", "Łódź © 2026 «ACME» ±5"),
    ("Żółw łże".encode("iso-8859-2"), "windows-1250", "Żółw łże"),
    (POLISH.encode("iso-8859-2"), "iso-8859-2", POLISH),
    (POLISH.encode("cp1250"), "windows-1250", POLISH),
    # Czech, Slovene and Slovak as labelled: ISO-8859-2's "š", "Š", "Ž" are windows-1250's "ą", "©", "®",
    # and windows-1250's "Ľ" is ISO-8859-2's "ź"; the other reading's more Polish letters prove nothing.
    *[(text.encode(codec), label, text) for text in (CZECH, SLOVENE, SLOVAK) for codec, label in LABELS],
]


@pytest.mark.parametrize(("body", "label", "sent"), CASES)
def test_the_reading_with_polish_letters_wins_over_the_label(body: bytes, label: str, sent: str) -> None:
    assert read_mail(mail(body, subject="PL", ctype=f"text/plain; charset={label}")).text == f"PL: {sent}"


def test_a_raw_subject_under_the_bodys_look_alike_label_is_read_so_too() -> None:
    raw = mail("Ściśle tajne.".encode("iso-8859-2"), subject="Ścisły termin".encode("iso-8859-2"),
               ctype="text/plain; charset=windows-1250")  # fmt: skip
    assert read_mail(raw).text == "Ścisły termin: Ściśle tajne."


async def test_through_smtp_the_phone_gets_polish_letters(tmp_path: Path) -> None:
    mails = [mail(body, subject="PL", ctype=f"text/plain; charset={label}") for body, label, _ in CASES]
    assert await phone_texts(tmp_path, mails) == [f"PL: {sent}" for _, _, sent in CASES]
