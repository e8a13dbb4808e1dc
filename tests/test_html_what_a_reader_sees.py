"""An HTML body reaches the phone as a mail program shows it.

- Hidden text: a notification's preheader ("display:none !important; mso-hide:all", padded with
  ZWNJs) or a `hidden` tracking code went to the phone ahead of the alert; inscriptis hides only a
  style reading "display: none" exactly. What a reader sees inside a hidden-looking element (a size
  or visibility of its own) stays, and so does "visibility: visible"; so does what "mso-hide:all" alone
  hides, from desktop Outlook only (which a template gives its own copy in an "[if mso]" comment).
- Inline elements add no spaces: inscriptis' default profile padded every <span>, so Word's language
  spans split words ("Dzi ę kuj ę") and a coloured digit split a code ("48 21 #").

read_mail() directly, then a real SMTP client to a running daemon whose built-in simulator records
what the phone got.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.htmlbody import html_to_text
from gateway.smtp.htmlshown import declarations
from gateway.smtp.intake import read_mail
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

HTML = "text/html; charset=utf-8"
PREHEADER = (
    '<html><body><div style="display:none !important;visibility:hidden;mso-hide:all;font-size:1px;'
    'line-height:1px;max-height:0;max-width:0;opacity:0;overflow:hidden;">Preheader: view this alert in '
    "your browser &#847; &zwnj; &nbsp; &#847; &zwnj; &nbsp;</div><p>DB1 is DOWN since 10:00</p></body></html>"
)


def text(markup: str) -> str:
    return html_to_text(markup, []).strip()


@pytest.mark.parametrize(
    "hidden",
    [
        '<span style="display: none !important; mso-hide: all">TRACKING 8f3a9c</span>',
        '<div style="DISPLAY : None!IMPORTANT">TRACKING 8f3a9c</div>',
        "<span hidden>TRACKING 8f3a9c</span>",
        '<div style="visibility:hidden">TRACKING 8f3a9c</div>',
        '<p style="font-size:0">TRACKING 8f3a9c</p>',
        '<p style="font-size: 0px !important">TRACKING <b>8f3a9c</b></p>',
        '<div style="max-height:0px; overflow: hidden">TRACKING 8f3a9c</div>',
        '<div style="height:0;overflow:hidden;mso-hide:none">TRACKING 8f3a9c</div>',
        '<div style="opacity: 0">TRACKING 8f3a9c</div>',
        '<div style="font:0/0 a">TRACKING 8f3a9c</div>',
        '<div style="height:0;padding:0 4px;overflow:hidden">TRACKING 8f3a9c</div>',
        # A stylesheet may size what is inside a zero-size cell, not the cell's own text.
        '<style>.c{font-size:14px}</style><table><tr><td style="font-size:0">TRACKING 8f3a9c</td></tr>'
        "</table>",
    ],
)
def test_hidden_elements_do_not_reach_the_phone(hidden: str) -> None:
    assert text(f"<html><body>{hidden}<p>DB1 is DOWN</p></body></html>") == "DB1 is DOWN"


# Shown by a browser although a rule above would have hidden it: a size of its own inside a zero-size
# cell (a legacy <font size>, the "font" shorthand, a stylesheet's class), a zero-height box whose
# padding holds the text (a responsive video's or image's), a table cell the browser widens.
SHOWN_BESIDE_TEXT = [
    '<table><tr><td style="font-size:0"><font size=3>Kod 4821</font></td></tr></table>',
    '<table><tr><td style="font-size:0"><div style="font:bold 14px/1.2 Arial">Kod 4821</div></td></tr>'
    "</table>",
    "<style>.col { font-size: 14px }</style>"
    '<table><tr><td style="font-size:0"><div class="col">Kod <b>4821</b></div></td></tr></table>',
    '<div style="height:0;padding-bottom:56%;overflow:hidden;position:relative">Kod 4821</div>',
    '<div style="max-height:0;padding-top:10px;overflow:hidden">Kod 4821</div>',
    '<table><tr><td style="width:0;overflow:hidden">Kod 4821</td></tr></table>',
    '<table><tr><th style="height:0;overflow:hidden">Kod 4821</th></tr></table>',
]


@pytest.mark.parametrize("markup", SHOWN_BESIDE_TEXT)
def test_a_size_of_its_own_a_padded_box_and_a_cell_are_shown(markup: str) -> None:
    assert text(f"<html><body>{markup}<p>DB1 is DOWN</p></body></html>").split() == [
        "Kod",
        "4821",
        "DB1",
        "is",
        "DOWN",
    ]


def test_a_notifications_preheader_goes_and_the_alert_is_one_gsm_text() -> None:
    m = read_mail(mail(PREHEADER, subject="Alert", ctype=HTML))
    assert m.text == "Alert: DB1 is DOWN since 10:00"


@pytest.mark.parametrize(
    ("markup", "shown"),
    [
        ('<p style="visibility: visible">Kod 4821</p>', "Kod 4821"),
        (
            '<div style="visibility:hidden">x <span style="Visibility:Visible">Kod 4821</span> y</div>',
            "Kod 4821",
        ),
        # Templates close the gaps between columns with a zero font size and size each column's text.
        (
            '<table><tr><td style="font-size:0"> <div style="display:inline-block;font-size:14px">Kod 4821'
            "</div></td></tr></table>",
            "Kod 4821",
        ),
        ('<div style="max-height:0">Kod 4821</div>', "Kod 4821"),  # nothing clips it
        ('<div style="overflow:hidden;max-height:200px">Kod 4821</div>', "Kod 4821"),
        ('<p style="font-size:10px;opacity:0.9">Kod 4821</p>', "Kod 4821"),
        ('<p aria-hidden="true" style="color:hidden">Kod 4821</p>', "Kod 4821"),
        # A mail that is hidden whole keeps its text rather than send nothing.
        ('<div style="visibility:hidden">Kod 4821</div>', "Kod 4821"),
    ],
)
def test_what_a_reader_sees_stays(markup: str, shown: str) -> None:
    assert text(f"<html><body>{markup}</body></html>") == shown


# Text hidden from desktop Outlook alone, which reads its own copy in the conditional comment.
OUTLOOK_COPY = (
    "<p>Hello Jan,</p><!--[if mso]><p>Your code is 4821</p><![endif]--><!--[if !mso]><!-->"
    '<div style="mso-hide:all">Your code is 4821</div><!--<![endif]--><p>Thanks</p>'
)


def test_text_hidden_from_desktop_outlook_alone_reaches_the_phone() -> None:
    m = read_mail(mail(f"<html><body>{OUTLOOK_COPY}</body></html>", subject="Kod", ctype=HTML))
    assert m.text == "Kod: Hello Jan,\n\nYour code is 4821\n\nThanks"


def test_a_style_is_read_as_declarations() -> None:
    assert declarations("Display: NONE ! important; color:red") == {"display": "none", "color": "red"}
    assert declarations("display:none!important;display:block") == {"display": "none"}
    assert declarations("display:none;display:block /* x */") == {"display": "block"}
    assert declarations("visibility:visible;;font-family:Arial") == {
        "visibility": "visible",
        "font-family": "arial",
    }


async def test_through_smtp_the_phone_gets_no_hidden_text(tmp_path: Path) -> None:
    tracking = mail("<span hidden>tracking 8f3a9c</span><p>DB1 is DOWN</p>", subject="Alert", ctype=HTML)
    got = await phone_texts(tmp_path, [mail(PREHEADER, subject="Alert", ctype=HTML), tracking])
    assert got == ["Alert: DB1 is DOWN since 10:00", "Alert: DB1 is DOWN"]


WORD = "<p class=MsoNormal>Dzi<span lang=PL>ę</span>kuj<span lang=PL>ę</span>, prosz<span lang=PL>ę</span>"
CODE = '<div>Kod do drzwi: 48<span style="color:red">21</span>#, godz. 10<span>:30</span></div>'
STYLED = "<p>Has<font color=red>lo</font>: <b>Taj</b><i>ne</i><em>1</em><strong>2</strong><u>3</u></p>"


@pytest.mark.parametrize(
    ("markup", "shown"),
    [
        (
            WORD + " o kontakt <span class=SpellE>jutro</span>.<o:p></o:p></p>",
            "Dziękuję, proszę o kontakt jutro.",
        ),
        (CODE, "Kod do drzwi: 4821#, godz. 10:30"),
        ("<div>Dzwoń na 601<span> </span>123<span>456</span></div>", "Dzwoń na 601 123456"),
        (STYLED, "Haslo: Tajne123"),
        (
            "<p>OPS-<a href='https://j.example.com/OPS-123'>123</a> done</p>",
            "OPS-123 (https://j.example.com/OPS-123) done",
        ),
        ("<p>godz. 10<sup>00</sup>, 25 m<sup>2</sup>, H<sub>2</sub>O</p>", "godz. 10:00, 25 m2, H2O"),
    ],
)
def test_inline_elements_add_no_spaces(markup: str, shown: str) -> None:
    assert text(markup) == shown


def test_blocks_lists_and_tables_still_break() -> None:
    markup = "<div>Kod</div><div>1234</div><ul><li>a</li><li>b</li></ul>"
    markup += "<table><tr><td>X</td><td>Y</td></tr></table>"
    assert text(markup).split() == ["Kod", "1234", "*", "a", "*", "b", "X", "Y"]


async def test_through_smtp_words_split_by_spans_arrive_whole(tmp_path: Path) -> None:
    word = mail("<p>Dzi<span lang=PL>ę</span>kuj<span lang=PL>ę</span></p>", subject="Spotkanie", ctype=HTML)
    code = mail('<div>Kod do drzwi: 48<span style="color:red">21</span>#</div>', subject="Kod", ctype=HTML)
    assert await phone_texts(tmp_path, [word, code]) == ["Spotkanie: Dziękuję", "Kod: Kod do drzwi: 4821#"]
