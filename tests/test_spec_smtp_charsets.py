"""R-1.3 over real SMTP: 8-bit Polish mail with no charset label, or a label nobody knows, reaches
the phone as written whether the client wrote ISO-8859-2 or windows-1250.

The two codecs read every byte from 0xA0 up without an error, so the gateway weighs their readings;
these mails go through a running gateway and the text is read back from the store.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601123456@{DOMAIN}"
TEXT = "wiadomości, życzenia i ą ź, Śląsk, Źródło"


def raw_mail(body: bytes, ctype: str, subject: bytes = b"Spotkanie") -> bytes:
    head = (
        f"From: {STAFF}\r\nTo: {RCPT}\r\nMessage-ID: <charset-test@acme.example>\r\nMIME-Version: 1.0\r\n"
    ).encode()
    head += b"Subject: " + subject + b"\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n".encode()
    return head + b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"


@pytest.mark.parametrize("charset", ["iso-8859-2", "cp1250"])
@pytest.mark.parametrize("ctype", ["text/plain", "", "text/plain; charset=x-unknown-polish"])
async def test_unlabelled_polish_body_arrives_as_written(tmp_path: Path, charset: str, ctype: str) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw_mail(TEXT.encode(charset), ctype), [RCPT])
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1 and TEXT in texts[0], texts


async def test_unlabelled_iso_8859_2_subject_arrives_as_written(tmp_path: Path) -> None:
    # A raw 8-bit subject in a mail whose body declares nothing: the header reading weighs the same way.
    subject = "Środa: spotkanie w Łodzi".encode("iso-8859-2")
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw_mail(b"ok", "text/plain", subject=subject), [RCPT])
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1 and "Środa: spotkanie w Łodzi" in texts[0], texts


async def test_windows_1250_symbols_are_not_taken_for_iso_8859_2_letters(tmp_path: Path) -> None:
    # "©", "«»" and "±" read as "Š", "Ťť" and "ą" in ISO-8859-2: one Polish letter is no evidence.
    text = "© «cytat» 5 ± 2"
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw_mail(text.encode("cp1250"), "text/plain"), [RCPT])
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1 and text in texts[0], texts


@pytest.mark.parametrize(
    "text",
    [
        "Wynik badania: 5 ±0,2 mg/dl, wszystko w normie. Pozdrawiam, Paweł",
        "Temperatura 5±2 °C, próbka pełna",
    ],
)
async def test_plus_minus_is_no_polish_letter_where_no_word_has_one(tmp_path: Path, text: str) -> None:
    # ISO-8859-2 reads windows-1250's "±" as "ą", one Polish letter more; but no word starts with "ą",
    # and no letter stands between two digits.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw_mail(text.encode("cp1250"), "text/plain"), [RCPT])
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1 and text in texts[0], texts


async def test_unlabelled_iso_8859_2_after_a_long_ascii_head_arrives_as_written(tmp_path: Path) -> None:
    # The weighing reads the non-ASCII characters wherever they stand: with 9 kB of ASCII first (an
    # HTML head's style sheet here; a disclaimer or a quoted log alike) a fixed beginning held nothing
    # to weigh, and windows-1250, the earlier fallback, stayed: "gę¶l± jaĽń … s± … ¶roda".
    text = "Zażółć gęślą jaźń. Proszę o zwrot: są błędy w fakturze, środa."
    style = "".join(f".c{i} {{ margin: 0 0 0 {i}px; font-family: Arial, sans-serif; }}\n" for i in range(160))
    assert len(style) > 8192
    html = f"<html><head><style>{style}</style></head><body><p>{text}</p></body></html>"
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw_mail(html.encode("iso-8859-2"), "text/html"), [RCPT])
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1 and text in texts[0], texts


def test_the_weighing_reads_a_few_thousand_letters_not_a_whole_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each reading is weighed a letter at a time in Python: a whole 1 MB unlabelled body took 0.35 s
    # of the event loop per mail. The work is counted in letters weighed, not timed.
    from gateway.smtp import charsets

    weighed: list[int] = []
    letters = charsets._weighed_letters
    monkeypatch.setattr(
        charsets, "_weighed_letters", lambda text: weighed.append(len(found := letters(text))) or found
    )
    body = ("Prosz\xea o wiadomo\xb6\xe6 " * 50_000).encode("latin-1")  # ISO-8859-2, 950 kB
    text = charsets.decode_text(body, None, ("utf-8", "windows-1250", "iso-8859-2"))
    assert text.startswith("Proszę o wiadomość") and len(text) == len(body)
    assert weighed and max(weighed) <= 4096, weighed


async def test_utf8_with_a_c1_control_is_read_as_utf8_and_the_control_never_reaches_the_phone(
    tmp_path: Path,
) -> None:
    # U+0085 is what a windows-1252 "…" becomes after one latin-1 misreading upstream; U+0080 its "€".
    # A strict UTF-8 reading of a correctly labelled mail is not a wrong guess because of them.
    body = "Zażółć\u0085gęślą, cena 5 €\u0080 i\u009b jaźń".encode()
    subject = b"=?utf-8?b?" + base64.b64encode("Środa\u0085Łódź\u0080".encode()) + b"?="
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw_mail(body, "text/plain; charset=utf-8", subject=subject), [RCPT])
        assert res.error is None and not res.refused, res
        texts = [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == 1, texts
    # NEL ends a line in the body and is a space in the one-line subject; the other C1 controls go.
    assert texts[0].startswith("Środa Łódź"), texts
    assert texts[0].endswith("Zażółć\ngęślą, cena 5 € i jaźń"), texts
    assert not re.search("[\x80-\x9f]", texts[0]), texts
