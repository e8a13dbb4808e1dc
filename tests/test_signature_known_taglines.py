"""The lines an antivirus program, a note on printing and more phones and mail apps add (R-1.3).

"Virus-free. www.avast.com", AVG's check line, "Please consider the environment before printing this
email.", its Polish kin, "Ta wiadomość została wysłana z urządzenia mobilnego.", "Gesendet von meinem
Samsung Galaxy Smartphone." and Proton Mail's line reached the phone below the text (a second UCS-2
part for "Jadę."). They are known footers now (`footers.KNOWN_FOOTER`): at the end of the text they
go, and where the person wrote below one, that line alone goes.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

TAGLINES = [
    "Virus-free. www.avast.com",
    "Wolne od wirusów. www.avast.com",
    "This email has been checked for viruses by AVG.\nhttps://www.avg.com",
    "This email has been checked for viruses by Avast antivirus software.\nwww.avast.com",
    "Please consider the environment before printing this email.",
    "Pomyśl o środowisku zanim wydrukujesz tę wiadomość.",
    "Zanim wydrukujesz tę wiadomość, pomyśl o środowisku.",
    "Ta wiadomość została wysłana z urządzenia mobilnego.",
    "Wiadomość wysłana z telefonu komórkowego, przepraszam za literówki.",
    "Gesendet von meinem Samsung Galaxy Smartphone.",
    "Sent with Proton Mail secure email.",
]
TEXT = "Faktura wysłana."


@pytest.mark.parametrize("tagline", TAGLINES)
def test_the_tagline_ending_the_text_is_cut(tagline: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{tagline}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


@pytest.mark.parametrize("tagline", [t for t in TAGLINES if "\n" not in t][::2])
def test_the_text_typed_below_it_stays(tagline: str) -> None:
    cleaned = clean_body(f"{tagline}\n\nTak, jutro o 9.")
    assert cleaned.text == "Tak, jutro o 9."


KEPT = [
    # The words in a person's own sentences.
    "Skan jest wolny od wirusów, sprawdziłem go dwa razy.",
    "Please consider the environment: we ship in paper boxes from now on.",
    "Wiadomość wysłana z telefonu Ani, bo mój się rozładował.",
]


@pytest.mark.parametrize("body", KEPT)
def test_a_sentence_of_the_persons_stays(body: str) -> None:
    assert clean_body(f"{TEXT}\n\n{body}").text == f"{TEXT}\n\n{body}"


async def test_through_smtp_the_phone_gets_the_text_alone(tmp_path: Path) -> None:
    bodies = [f"{TEXT}\n\n{t}" for t in TAGLINES[:2] + TAGLINES[5:9:3]]
    assert await phone_got(tmp_path, bodies) == [TEXT] * len(bodies)
