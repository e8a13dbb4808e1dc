"""A company's banner below a signature does not reach the phone (R-1.3).

Below "Pozdrawiam\\nJan" a company's signature may carry an advertisement: "Odwiedź nasz sklep
www.example.pl — rabat 20% na wszystko!", "Join us at Booth 42 at Expo 2027". One longer than 100
characters was taken for the person's own line, so the whole sign-off block stayed, and below a
postscript everything stayed: the SMS cost up to 10 parts for a line no one wrote to the phone. A
paragraph there with a link or a web address, or with words of two kinds of a promotion (an invitation,
an offer, an event, the company's channels, its prizes), is a banner and goes; the
postscript stays, and so does a long line of the person's.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signature_disclaimers import AFTERTHOUGHT
from tests.test_signatures_footer_text import DISCLAIMER, phone_got

SHOP = "Odwiedź nasz sklep www.example.pl — rabat 20% na wszystko!"
BOOTH = "Join us at Booth 42 at Expo 2027"
LONG_BOOTH = (
    "Join us at Booth 42 at Expo 2027 in Warsaw, 12-14 May: the biggest logistics fair in Central Europe, "
    "free entry for customers!"
)
LONG_SHOP = (
    "Odwiedź nasz sklep internetowy i skorzystaj z rabatu 20% na wszystko przy zamówieniu powyżej 200 zł "
    "do końca miesiąca!"
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A long banner below the name: the block was kept whole.
        (f"Meeting tomorrow.\n\nRegards\nJohn\n\n{LONG_BOOTH}", "Meeting tomorrow."),
        (f"Spotkanie jutro.\n\nPozdrawiam\nJan\n\n{LONG_SHOP}", "Spotkanie jutro."),
        (f"Spotkanie jutro.\n\nPozdrawiam\nJan Kowalski\n\n{BOOTH}\n{LONG_SHOP}", "Spotkanie jutro."),
        # Below a postscript: everything below it stayed.
        (
            f"Spotkanie jutro.\n\nPozdrawiam\nJan\n\nPS. Oddzwonię po 15.\n\n{SHOP}",
            "Spotkanie jutro.\n\nPS. Oddzwonię po 15.",
        ),
        (
            f"Spotkanie jutro.\n\nPozdrawiam\nJan\n\nP.S. Sala 204.\n\n{BOOTH}\n\n{DISCLAIMER}",
            "Spotkanie jutro.\n\nP.S. Sala 204.",
        ),
        # Short ones right below the name went before and still do.
        (f"Spotkanie jutro.\n\nPozdrawiam\nJan\n\n{SHOP}", "Spotkanie jutro."),
        (f"Spotkanie jutro.\n\nPozdrawiam\nJan\nACME Sp. z o.o.\n\n{BOOTH}", "Spotkanie jutro."),
    ],
)
def test_a_banner_below_the_name_goes(body: str, expected: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (expected, True)


@pytest.mark.parametrize(
    "body",
    [
        # The person's long line stays with all the block, as before.
        f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{AFTERTHOUGHT}",
        "Spotkanie o 10.\n\nPozdrawiam\nJan\n\nZapraszam jutro na kawę do biura, mamy do omówienia nowy "
        "harmonogram dostaw i budżet na przyszły kwartał.",
    ],
)
def test_a_long_line_of_the_persons_below_the_name_stays(body: str) -> None:
    assert clean_body(body).text == body


def test_what_follows_a_postscript_stays_but_a_banner() -> None:
    body = "Tekst\n\nPozdrawiam\nJan\n\nPS. Sala 204.\n\nPPS. Kawa będzie.\n\n" + SHOP
    assert clean_body(body).text == "Tekst\n\nPS. Sala 204.\n\nPPS. Kawa będzie."


@pytest.mark.parametrize(
    ("text", "banner"),
    [
        (SHOP, True),
        (BOOTH, True),
        ("Follow us on LinkedIn and Facebook!", True),
        ("Zapraszamy na nasze stoisko nr 12 na targach Logistyka 2027!", True),
        ("Nowość! Subskrybuj nasz newsletter i zyskaj 10% rabatu.", True),
        ("Oddzwonię po 15.", False),
        ("Zapraszam jutro na kawę!", False),
        ("Przyjadę na targi w czwartek.", False),
        ("Sale 204 i 205 są zajęte.", False),
        ("Klient prosi o rabat 5%, co myślisz?", False),
    ],
)
def test_what_reads_as_a_banner(text: str, banner: bool) -> None:
    from gateway.smtp.signofftail import is_banner  # here: the other tests run against the code before it

    assert is_banner(text) is banner


async def test_through_smtp_a_banner_stays_off_the_phone(tmp_path: Path) -> None:
    bodies = [
        f"Meeting tomorrow.\n\nRegards\nJohn\n\n{LONG_BOOTH}",
        f"Spotkanie jutro.\n\nPozdrawiam\nJan\n\nPS. Oddzwonię po 15.\n\n{SHOP}",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Meeting tomorrow.",
        "Spotkanie jutro.\n\nPS. Oddzwonię po 15.",
    ]


# A person's long line that names a shop's domain or says "our", "nasz", "przy okazji": not a banner.
PERSONS_LONG = [
    "Zamówienie złożyłem na allegro.pl, ale paczka nie dotarła, więc proszę o kontakt z kurierem jeszcze "
    "dziś po południu.",
    "Przy okazji: nasz przegląd serwerów przesuwam na czwartek, bo w środę jestem na konferencji w "
    "Krakowie cały dzień.",
    "Our quarterly review moves to Thursday because I am at the conference in Berlin all Wednesday, sorry "
    "for the mess.",
]


@pytest.mark.parametrize("line", PERSONS_LONG)
def test_a_persons_long_line_naming_a_shop_or_our_stays(line: str) -> None:
    for body in (
        f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{line}",
        f"Spotkanie o 10.\n\nPozdrawiam\nJan\n{line}",
        f"Spotkanie o 10.\n--\n{line}",
    ):
        cleaned = clean_body(body)
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


@pytest.mark.parametrize(
    "paragraph",
    [
        "PPS. Link do spotkania: https://meet.google.com/abc-defg-hij",
        "P.P.S. Zapraszamy na konferencję w piątek, sala 204.",
        "PPS. Zamówienie złożyłem na allegro.pl.",
        "Link do spotkania: https://meet.google.com/abc-defg-hij",
    ],
)
def test_a_later_postscript_or_a_link_below_a_postscript_stays(paragraph: str) -> None:
    body = f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\nPS. Agenda w załączniku.\n\n{paragraph}"
    assert clean_body(body).text == f"Spotkanie o 10.\n\nPS. Agenda w załączniku.\n\n{paragraph}"


@pytest.mark.parametrize(
    "line",
    [
        "Obserwuj nas!",
        "Polub nas.",
        "Zobacz nasz katalog!",
        "Check out our new catalogue.",
        "Discover our range.",
        "Sprawdź naszą ofertę.",
        "Odkryj nasze produkty.",
        "Poznaj nasz zespół!",
    ],
)
def test_an_invitation_to_the_companys_own_is_a_banner(line: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\n{line}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10.", True)
    cleaned = clean_body(f"Spotkanie o 10.\n\nPozdrawiam\nJan\n\nPS. Sala 204.\n\n{line}")
    assert cleaned.text == "Spotkanie o 10.\n\nPS. Sala 204."
