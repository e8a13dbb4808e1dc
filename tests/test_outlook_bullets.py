"""Outlook's bulleted lists ("·" in the Symbol-font spans of its HTML, "·" or "•" and a run of spaces
in its text part), its non-breaking hyphen and the minus sign pushed a plain ASCII mail to UCS-2:
twice the parts. They are made plain when that keeps the text GSM, a line-leading bullet and its
run of spaces as "- "; a text that stays UCS-2 for another character keeps them, and the note names
that character, not the bullet.

plan() directly, then through a running daemon: a real SMTP client to its listener, its built-in
simulator's records as what the phone got, the confirmation at a real SMTP sink.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest

from smsc.encoding import Coding, plan
from tests.conftest import DOMAIN, STAFF, mail
from tests.test_cut_from import body_of, confirming

LIST = "Plan na jutro:\n·         restart serwera A o 22:00\n·         backup bazy o 23:00"
PLAIN_LIST = "Plan na jutro:\n- restart serwera A o 22:00\n- backup bazy o 23:00"

# As Outlook writes a bulleted list in HTML: the bullet in a Symbol-font span, then no-break spaces.
_ITEM = (
    "<p class=MsoListParagraphCxSp{0} style='text-indent:-18.0pt;mso-list:l0 level1 lfo1'>"
    "<![if !supportLists]><span style='font-family:Symbol'><span style='mso-list:Ignore'>&middot;"
    "<span style='font:7.0pt \"Times New Roman\"'>&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;&nbsp; </span>"
    "</span></span><![endif]>{1}<o:p></o:p></p>"
)
OUTLOOK_HTML = (
    "<html><head><style>p.MsoNormal {margin:0cm}</style></head><body lang=PL><div class=WordSection1>"
    "<p class=MsoNormal>Plan na jutro:<o:p></o:p></p>"
    + _ITEM.format("First", "restart serwera A o 22:00")
    + _ITEM.format("Last", "backup bazy o 23:00")
    + "</div></body></html>"
)


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        (LIST, PLAIN_LIST),
        ("Lista:\n•\u00a0\u00a0\u00a0\u00a0mleko\n•\tchleb", "Lista:\n- mleko\n- chleb"),
        ("Tel. 22\u2011555\u201112\u201134, temp. \u22125 C", "Tel. 22-555-12-34, temp. -5 C"),
        ("Jan Kowalski · Kierownik", "Jan Kowalski - Kierownik"),  # not at a line's start: the bullet alone
    ],
)
def test_outlook_bullets_hyphens_and_minus_are_made_plain_in_one_gsm_part(text: str, sent: str) -> None:
    for transliterate in (False, True):
        p = plan(text, transliterate=transliterate)
        assert (p.coding, len(p.parts), p.text, p.reason) == (Coding.GSM7, 1, sent, None)
        assert p.plain_punctuation and not p.transliterated


@pytest.mark.parametrize("text", ["Pole: 2·3 m = 6 m2", "Ens veiem al col·legi", "a·b"])
def test_a_middle_dot_inside_a_word_or_a_number_stays_as_written(text: str) -> None:
    # Made "-" anywhere, "2·3" (two by three) reached the phone as "2-3" (two to three).
    for transliterate in (False, True):
        p = plan(text, transliterate=transliterate)
        assert (p.coding, p.text, p.reason) == (Coding.UCS2, text, "· forced UCS-2")


def test_a_list_that_stays_ucs2_keeps_its_bullets_and_the_note_names_the_polish_letter() -> None:
    text = "Plan:\n· zażółć"
    p = plan(text)
    assert p.coding is Coding.UCS2 and p.text == text and p.reason == "ż, ó, ł forced UCS-2"
    p = plan(text, transliterate=True)
    assert p.coding is Coding.GSM7 and p.text == "Plan:\n- zazolc" and p.transliterated
    p = plan("Plan:\n· serwer 😀", transliterate=True)
    assert p.coding is Coding.UCS2 and p.text == "Plan:\n· serwer 😀" and p.reason == "😀 forced UCS-2"


def _html(markup: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = f"601123457@{DOMAIN}"
    msg.set_content(markup, subtype="html")
    return msg


async def test_the_phone_gets_an_outlook_list_in_one_gsm_part_from_text_and_from_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with confirming(tmp_path, capsys) as (gw, sink):
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", LIST))).error is None
        await gw.until(lambda: len(core.records) >= 1)
        await sink.wait(1)
        assert (await gw.send(_html(OUTLOOK_HTML))).error is None
        await gw.until(lambda: len(core.records) >= 2)
        await asyncio.sleep(0.3)  # a further part would have come by now
        assert [(r["data_coding"], r["text"]) for r in core.records] == [(0, PLAIN_LIST), (0, PLAIN_LIST)]
        confirmation = body_of(sink.messages[0][2])
        assert "1 SMS part(s), GSM 03.38" in confirmation, confirmation
        assert "forced UCS-2" not in confirmation
