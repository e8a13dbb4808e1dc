"""Outlook's automatic-signature bookmark in an HTML alternative whose MIME header names no charset (R-1.3):
the HTML says it in its <meta http-equiv="Content-Type" content="text/html; charset=…"> (or <meta
charset=…>). The HTML body was read in that charset, but the bookmark's first line, looked for in
the text alternative, was read by the configured fallbacks instead: "Grégoire Lefèvre" in
windows-1252 came out as "Lefčvre" (windows-1250), and a Polish "Paweł Świątek" in windows-1250,
where the fallbacks are UTF-8 and ISO-8859-2, with a C1 control for "Ś". The line matched no line of
the text, and the signature under it went to the phone. Through a real SMTP client into the running
daemon, read at its built-in simulator, too."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import IntakeOptions, read_mail
from tests.test_intake import multipart, part
from tests.test_subject_cut_numbers import phone_texts

ASKED = "Please send the invoice by Friday."
SENT = f"Invoice: {ASKED}"


def outlook(name: str, charset: str, meta: str) -> bytes:
    """A text alternative (UTF-8) and Outlook's HTML one, in `charset`, naming it only in `meta`."""
    title = "Purchasing Manager"
    text = f"{ASKED}\n\n{name}\n{title}\nACME Ltd."
    signature = "".join(
        f"<p class=MsoNormal><span style='mso-bookmark:_MailAutoSig'>{line}</span></p>"
        for line in (title, "ACME Ltd.")
    )
    html = (
        f"<html><head>{meta}</head><body><p class=MsoNormal>{ASKED}</p><p>&nbsp;</p>"
        f'<p class=MsoNormal><a name="_MailAutoSig"><b>{name}</b></a></p>{signature}</body></html>'
    )
    plain = part("text/plain; charset=utf-8", text, "Content-Transfer-Encoding: 8bit\n")
    markup = part("text/html", html.encode(charset), "Content-Transfer-Encoding: 8bit\n")
    return multipart("alternative", plain, markup, subject="Invoice")


def http_equiv(charset: str) -> str:
    return f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'


WESTERN = [
    outlook("Grégoire Lefèvre", "cp1252", http_equiv("windows-1252")),
    outlook("José Muñoz", "cp1252", '<meta charset="windows-1252">'),
    outlook("Grégoire Lefèvre", "iso-8859-1", http_equiv("iso-8859-1")),
]


@pytest.mark.parametrize("raw", WESTERN, ids=["http-equiv 1252", "meta charset 1252", "http-equiv latin-1"])
def test_the_meta_charset_reads_the_bookmarks_line(raw: bytes) -> None:
    assert read_mail(raw).text == SENT


def test_a_polish_signature_in_windows_1250_where_the_fallbacks_do_not_name_it() -> None:
    raw = outlook("Paweł Świątek", "cp1250", http_equiv("windows-1250"))
    assert read_mail(raw, IntakeOptions(charset_fallbacks=("utf-8", "iso-8859-2"))).text == SENT
    assert read_mail(raw).text == SENT  # the default fallbacks name it: as before


def test_a_meta_that_names_no_known_charset_leaves_the_fallbacks() -> None:
    raw = outlook("Paweł Świątek", "cp1250", http_equiv("x-unknown"))
    assert read_mail(raw).text == SENT


async def test_through_smtp_the_phone_gets_no_signature(tmp_path: Path) -> None:
    assert await phone_texts(tmp_path, WESTERN) == [SENT] * len(WESTERN)
