"""Leftovers of mail programs that reached the phone (R-1.3).

- Inline-image references sharing a line with text: Outlook's signature logo after the name ("Jan
  Kowalski [cid:image001.png@01D9…]"), Gmail's picture amid the text ("Zobacz [image: wykres.png] i
  daj znać"). Only a line that was nothing but the reference was dropped.
- Outlook's plain-text links: "biuro@acme.pl<mailto:biuro@acme.pl>" and "spotkania<https://…>" went
  out as written (a 40-character sentence became 3 UCS-2 parts). The target follows the rule of an
  HTML link's (gateway.smtp.textclean.link_target): shown in brackets when short and within the
  mail's budget, else left out; a mailto: never.
- HTML text unescaped twice: a mail that showed "&lt;b&gt;" (a tag quoted in a support mail) reached
  the phone as "<b>", a shown "&nbsp;" vanished (inscriptis unescapes what lxml already had).
- Polish webmail's footers ("Wysłano z Poczty Onet", "Wysłane z aplikacji mobilnej Interia Poczta",
  WP Poczta, o2) went along; they now end the text as "Sent from my iPhone" does.

Each rule has its negative twin: what the person wrote stays. clean_body() and read_mail() directly,
then a real SMTP client to a running daemon whose built-in simulator records what the phone got.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textclean import IMAGE_REF, SIGNATURE, Cleaned, clean_body
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway, smtp_sink
from tests.test_cut_from import daemon_config
from tests.test_intake import mail

CID = "[cid:image001.png@01D9C8E4.5A6B7C80]"


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (f"Proszę o telefon.\n\nJan Kowalski {CID}\n", "Proszę o telefon.\n\nJan Kowalski"),
        ("Zobacz [image: wykres.png] i daj znać.", "Zobacz i daj znać."),
        ("Zobacz [image: wykres.png], dobrze?", "Zobacz, dobrze?"),
        (f"{CID} Spotkanie o 10:00 {CID}[image: logo]", "Spotkanie o 10:00"),
        (f"Spotkanie o 10:00.\n{CID} [image: logo]\nSala 204.", "Spotkanie o 10:00.\nSala 204."),
    ],
)
def test_an_image_reference_within_a_line_is_cut_out(body: str, sent: str) -> None:
    cleaned = clean_body(body)
    assert cleaned.text == sent
    assert IMAGE_REF in cleaned.removed


@pytest.mark.parametrize(
    "body",
    [
        "Tabela [1] i [image] zostają.",
        "Zobacz [obraz: wykres] i [cid] oraz [cid: x].",
        "[Pilne] Serwer padł.",
    ],
)
def test_other_brackets_in_a_line_stay(body: str) -> None:
    assert clean_body(body) == Cleaned(body, ())


def test_a_line_of_many_unclosed_references_is_read_once() -> None:
    # Each "[image:" without a "]" and each space before a "[" that is no reference must not make
    # the search start over to the end of the line (a mail is cleaned on the event loop).
    for body in ("x [image:" * 40_000, " " * 200_000 + "x[", " [" * 100_000):
        start = time.perf_counter()
        assert clean_body(body).text == " ".join(body.split())
        assert time.perf_counter() - start < 1


TEAMS = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc"
TRACKING = "https://click.example.com/t/" + "a1b2c3" * 40


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (
            f"Proszę pisać na biuro@acme.pl<mailto:biuro@acme.pl> albo dołączyć do spotkania<{TEAMS}>.",
            f"Proszę pisać na biuro@acme.pl albo dołączyć do spotkania ({TEAMS}).",
        ),
        ("Pisz: Anna@acme.pl <mailto:anna@acme.pl>.", "Pisz: Anna@acme.pl."),
        ("Napisz do Anny<mailto:anna@acme.pl?subject=Oferta>.", "Napisz do Anny."),
        (f"Zapisy tutaj<{TRACKING}>.", "Zapisy tutaj."),
        ("Strona: www.acme.pl<http://www.acme.pl/> (nowa).", "Strona: www.acme.pl (nowa)."),
        (
            "Cennik: https://acme.pl/cennik<https://eur01.safelinks.protection.outlook.com/?url=x>",
            "Cennik: https://acme.pl/cennik",
        ),
        ("(agenda<https://acme.pl/a>)", "(agenda (https://acme.pl/a))"),
    ],
)
def test_outlooks_plain_text_links_follow_the_html_links_rule(body: str, sent: str) -> None:
    assert clean_body(body).text == sent


def test_the_targets_of_a_mail_share_one_budget_as_in_html() -> None:
    links = [f"https://meet.example.com/{n}-" + "x" * 50 for n in range(3)]  # 77 characters each
    body = " ".join(f"spotkanie{n}<{url}>" for n, url in enumerate(links))
    assert clean_body(body).text == f"spotkanie0 ({links[0]}) spotkanie1 ({links[1]}) spotkanie2"
    html = " ".join(f'<a href="{url}">spotkanie{n}</a>' for n, url in enumerate(links))
    assert read_mail(mail(f"<html><body><p>{html}</p></body></html>", ctype="text/html")).body == (
        clean_body(body).text
    )


@pytest.mark.parametrize(
    "body",
    [
        "Zobacz <https://acme.pl/x> i oddzwoń.",  # a URL as a person writes it
        "Pisz do Anny <mailto:anna@acme.pl>",
        "Od: Anna Nowak <anna@acme.pl>",
        "Warunek a<b> i x<y>.",
    ],
)
def test_angle_brackets_a_person_writes_stay(body: str) -> None:
    assert clean_body(body).text == body


def test_a_quoted_or_signed_link_takes_nothing_from_the_budget() -> None:
    own = "https://meet.example.com/" + "m" * 50
    body = f"Spotkanie<{own}>\n\nPozdrawiam\nJan\n\nOd: Anna\nWysłano: wtorek\nDo: Jan\nTemat: T\n\n"
    body += " ".join(f"link<https://acme.pl/{n}/" + "q" * 60 + ">" for n in range(3))
    assert clean_body(body).text == f"Spotkanie ({own})"


def test_a_line_of_one_long_word_is_read_once() -> None:
    for body in ("a" * 300_000 + "<", "a<" * 150_000, "x<https://" * 50_000):
        start = time.perf_counter()
        assert clean_body(body).text == body
        assert time.perf_counter() - start < 1


@pytest.mark.parametrize(
    ("markup", "sent"),
    [
        ("Wpisz &amp;lt;b&amp;gt; przed tekstem.", "Wpisz &lt;b&gt; przed tekstem."),
        ("Spacja to &amp;nbsp; w HTML.", "Spacja to &nbsp; w HTML."),
        ("A &amp;amp; B", "A &amp; B"),
        # What the mail shows as a character stays that character.
        ("Wpisz &lt;b&gt; i A &amp; B&nbsp;C &euro; &#x1F600;", "Wpisz <b> i A & B C € 😀"),
        ("<pre>if a &amp;lt; b</pre>", "if a &lt; b"),
    ],
)
def test_html_text_is_unescaped_once(markup: str, sent: str) -> None:
    html = f"<html><body><p>{markup}</p></body></html>"
    assert read_mail(mail(html, ctype="text/html; charset=utf-8")).body == sent


def test_a_shown_targets_ampersand_stays() -> None:
    html = '<html><body><p>Zapisy <a href="https://acme.pl/?a=1&amp;copy=2">tutaj</a></p></body></html>'
    assert read_mail(mail(html, ctype="text/html")).body == "Zapisy tutaj (https://acme.pl/?a=1&copy=2)"


@pytest.mark.parametrize(
    "footer",
    [
        "Wysłano z Poczty Onet",
        "Wysłano z aplikacji Onet Poczta",
        "Wysłane z aplikacji mobilnej Interia Poczta",
        "Wysłano z Interia Poczta dla Androida",
        "Wysłane z aplikacji WP Poczta",
        "Wysłane z Poczty WP <https://poczta.wp.pl>",
        "Wysłane z aplikacji mobilnej Poczta WP",
        "Wysłano z poczty o2.pl",
        "Wysłane z aplikacji Poczta o2",
    ],
)
def test_polish_webmail_footers_end_the_text(footer: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10:00.\n\n{footer}\nhttps://poczta.example.pl\n")
    assert (cleaned.text, cleaned.removed) == ("Spotkanie o 10:00.", (SIGNATURE,))


@pytest.mark.parametrize(
    "line", ["Wysłano z poczty Onet dwa pliki.", "Wysłałem z Poczty Onet", "Wysłano z Onetu", "Poczta WP"]
)
def test_a_sentence_about_webmail_stays(line: str) -> None:
    body = f"Spotkanie o 10:00.\n\n{line}"
    assert clean_body(body).text == body


# (body, MIME type, what the phone gets after "Tel: ")
CASES: list[tuple[str, str, str]] = [
    (f"Proszę o telefon.\r\n\r\nJan Kowalski {CID}\r\n", "plain", "Proszę o telefon.\n\nJan Kowalski"),
    ("Zobacz [image: wykres.png] i daj znać.\r\n", "plain", "Zobacz i daj znać."),
    (
        f"Pisz na biuro@acme.pl<mailto:biuro@acme.pl> albo dołącz do spotkania<{TEAMS}>.\r\n",
        "plain",
        f"Pisz na biuro@acme.pl albo dołącz do spotkania ({TEAMS}).",
    ),
    (
        "<html><body><p>Wpisz &amp;lt;b&amp;gt;, nie &amp;nbsp;.</p></body></html>",
        "html",
        "Wpisz &lt;b&gt;, nie &nbsp;.",
    ),
]


def test_the_intake_sends_what_the_cases_say() -> None:
    for body, sub, sent in CASES:
        assert read_mail(mail(body, subject="Tel", ctype=f"text/{sub}; charset=utf-8")).body == sent


async def test_through_smtp_the_phone_gets_the_text_without_the_leftovers(tmp_path: Path) -> None:
    relay = free_port()
    cfg, _ = daemon_config(tmp_path, relay)
    numbers = [f"6011234{i:02d}" for i in range(len(CASES))]
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for i, ((body, sub, _), number) in enumerate(zip(CASES, numbers, strict=True)):
            raw = mail(body, subject="Tel", ctype=f"text/{sub}; charset=utf-8")
            raw = raw.replace(b"<m1@example.com>", f"<leftover{i}@example.com>".encode())
            assert (await gw.send(raw, [f"{number}@{DOMAIN}"], sender=STAFF)).error is None
        await gw.until(lambda: {str(r["destination"])[-9:] for r in core.records} >= set(numbers))
        await asyncio.sleep(0.3)  # a further part would have come by now
    got = {n: "".join(r["text"] for r in core.records if str(r["destination"]).endswith(n)) for n in numbers}
    assert got == {n: f"Tel: {sent}" for n, (_, _, sent) in zip(numbers, CASES, strict=True)}
