"""What the bounds on reading a mail (`mimebody`'s HTML budget, its binary test) must not cost: text.

- A text with a few control characters (a DOS ^Z at its end, a form feed, a BEL, FileMaker's
  vertical tabs) is text: one of them in a body under 100 characters made it an unsent attachment.
- UTF-16 read a byte a character (undeclared, or labelled ucs-2, unicode, unicode-1-1) is read as
  before, not refused as binary; UTF-32 with its BOM is UTF-32, not UTF-16.
- A part the budget skips is not a part without text: a forward whose outer HTML spent the budget
  on an inline picture is read from the enclosed message, and a mail refused after a skip is told
  that HTML parts were not read, not that it had no text or only attachments.
- The budget bounds what is converted (two parts of 495,000 characters are not both converted
  whole), and HTML deeper than libxml2's 256 elements goes to the regex reading, not a 2,048-deep
  tree (whose tables cost a part twice as much).
- Near-empty HTML parts (Apple Mail's between inline pictures) do not use up the hundred parts.

The corpus test of tests/test_smtp_mail_reading_bounds.py (the corpus reads the same with the budget
lifted) cannot catch any of these: the corpus has no such mail, and the binary test is not lifted.
"""

from __future__ import annotations

import codecs
from typing import Any

import pytest

from gateway.smtp import htmlbody, mimebody, replies
from gateway.smtp.intake import IntakeRefused, read_mail
from tests.test_smtp_mail_reading_bounds import simple


def multipart(subject: str, parts: list[bytes]) -> bytes:
    body = b"".join(b"--B\r\n" + p + b"\r\n" for p in parts) + b"--B--\r\n"
    return simple(subject, "multipart/mixed; boundary=B", body)


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"Serwer backup01 nie odpowiada od 03:10\r\n\x1a", "Serwer backup01 nie odpowiada od 03:10"),
        (b"Raport dzienny\r\nZamowienia: 14\r\n\x0c\r\n", "Zamowienia: 14"),
        (b"\x07ALARM: temperatura w serwerowni 35C\r\n", "ALARM: temperatura w serwerowni 35C"),
        ("Zamówienie 1234\x0bKlient: Jan Kowalski\x0bProszę oddzwonić".encode(), "Klient: Jan Kowalski"),
        # Line breaks, however many: 18 short lines joined by vertical tabs were taken for binary.
        ("\x0b".join(f"Stock {i:02d}: 5 pcs" for i in range(18)).encode(), "Stock 17: 5 pcs"),
    ],
    ids=["dos-eof", "form-feed", "bel", "filemaker-vt", "filemaker-vt-many"],
)
def test_a_few_control_characters_leave_a_text_a_text(body: bytes, expected: str) -> None:
    mail = read_mail(simple("", "text/plain; charset=utf-8", body))
    assert expected in mail.text and not any("attachments" in note for note in mail.removed), mail


def test_a_binary_file_is_still_no_text() -> None:
    binary = bytes(range(256)) * 2
    with pytest.raises(IntakeRefused) as refused:
        read_mail(simple("", "text/plain", binary))
    assert refused.value.reply == replies.ONLY_ATTACHMENTS


TEXT = "Spotkanie o 15:00 w sali 204, proszę potwierdzić."


@pytest.mark.parametrize("label", ["ucs-2", "unicode", "unicode-1-1", "utf-16"])
def test_utf16_under_the_labels_mail_programs_write_is_read(label: str) -> None:
    mail = read_mail(simple("", f"text/plain; charset={label}", TEXT.encode("utf-16-le")))
    assert mail.text == TEXT


def test_undeclared_utf16_is_read_as_before_not_refused() -> None:
    mail = read_mail(simple("", "text/plain", TEXT.encode("utf-16-le")))
    assert mail.text.startswith("Spotkanie o 15:00 w sali 204")


def test_utf32_with_its_bom_is_utf32() -> None:
    data = codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le")
    assert read_mail(simple("", "text/plain; charset=utf-32", data)).text == TEXT
    assert read_mail(simple("", "text/plain", codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"))).text == TEXT


NARADA = "Narada przeniesiona na 15:00, sala 204."


def forward_of_a_big_picture(subject: str) -> bytes:
    """Outlook's forward as an attachment: the outer HTML is an inline data: picture (560 KB, no
    text), the text is the enclosed message's."""
    picture = b'<html><body><img src="data:image/png;base64,' + b"iVBORw0KGgo" * 51_000 + b'"></body></html>'
    enclosed = (
        b"From: jan@example.pl\r\nSubject: Narada\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>" + NARADA.encode() + b"</p></body></html>\r\n"
    )
    return multipart(
        subject,
        [
            b"Content-Type: text/html; charset=utf-8\r\n\r\n" + picture,
            b"Content-Type: message/rfc822\r\n\r\n" + enclosed,
        ],
    )


@pytest.mark.parametrize("subject", ["Narada", ""])
def test_a_forward_whose_outer_html_spent_the_budget_sends_the_enclosed_text(subject: str) -> None:
    mail = read_mail(forward_of_a_big_picture(subject))
    assert mail.text == (f"{subject}: {NARADA}" if subject else NARADA)
    assert not any(note.startswith("HTML parts") for note in mail.removed), mail.removed


def empty_tables(i: int) -> bytes:
    tables = b"<table><tr><td>&nbsp;</td></tr></table>" * 20
    return b"<html><body>" + tables + b"<!-- %d --></body></html>" % i


def test_a_refusal_after_a_skip_says_html_parts_were_not_read() -> None:
    # 101 parts of empty tables fill the hundred; the text is in the one after them.
    parts = [b"Content-Type: text/html\r\n\r\n" + empty_tables(i) for i in range(101)]
    parts.append(b"Content-Type: text/html\r\n\r\n<html><body><p>Prosze oddzwonic</p></body></html>")
    with pytest.raises(IntakeRefused) as refused:
        read_mail(multipart("", parts))
    assert refused.value.reply == replies.HTML_NOT_READ
    mail = read_mail(multipart("Budowa", parts))
    assert mail.text == "Budowa" and "HTML converted" not in mail.removed
    assert mimebody.html_not_read(100) in mail.removed


def test_near_empty_html_parts_do_not_use_up_the_hundred() -> None:
    # Apple Mail: a near-empty HTML part between each two inline pictures, the text in the last.
    apple = b'<html><body style="word-wrap: break-word;"><div><br></div></body></html>'
    parts: list[bytes] = []
    for i in range(110):
        parts.append(b"Content-Type: text/html; charset=utf-8\r\n\r\n" + apple)
        parts.append(b"Content-Type: image/jpeg\r\nContent-Disposition: inline\r\n\r\n/9j/4AAQ%d" % i)
    parts.append(
        b"Content-Type: text/html\r\n\r\n<html><body><p>Zdjecia z budowy, prosze oddzwonic</p></body></html>"
    )
    mail = read_mail(multipart("", parts))
    assert mail.text == "Zdjecia z budowy, prosze oddzwonic"


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of each markup the MIME walk has converted."""
    lengths: list[int] = []
    convert = mimebody.html_to_text

    def counted(markup: str, notes: list[str]) -> str:
        lengths.append(len(markup))
        return convert(markup, notes)

    monkeypatch.setattr(mimebody, "html_to_text", counted)
    return lengths


def test_the_budget_bounds_what_is_converted(converted: list[int]) -> None:
    big = b"<html><body>" + b"<p>&nbsp;</p>" * 38_000 + b"</body></html>"  # ~495,000 characters, no text
    assert 490_000 < len(big) < 500_000
    read_mail(multipart("Raport", [b"Content-Type: text/html\r\n\r\n" + big] * 2))
    assert sum(converted) <= mimebody._HTML_READ_MAX, converted


@pytest.fixture
def layouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Trees laid out by inscriptis (a deep tree of tables costs it most)."""
    made: list[int] = []
    real = htmlbody.Inscriptis

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(htmlbody, "Inscriptis", counted)
    return made


def test_html_deeper_than_libxml2s_bound_is_read_by_the_regex_reading(layouts: list[int]) -> None:
    markup = b"<html><body>" + b"<table><tr><td>" * 100 + b"Klient czeka w recepcji"
    markup += b"</td></tr></table>" * 100 + b"</body></html>"
    mail = read_mail(simple("Recepcja", "text/html; charset=utf-8", markup))
    assert " ".join(mail.text.split()) == "Recepcja: Klient czeka w recepcji"
    assert layouts == []  # not parsed 300 elements deep and laid out
    read_mail(simple("Recepcja", "text/html", b"<html><body><p>Klient</p></body></html>"))
    assert layouts == [1]  # the spy sees an ordinary layout
