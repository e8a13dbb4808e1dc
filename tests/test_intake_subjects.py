"""read_mail() and subjects: encoded-word decoding, and a raw 8-bit subject read in the body's charset
first (a UTF-8 one stays UTF-8 whatever the body declares). Split from test_intake.py by subject (it
was over 400 lines); the subject cut and its options stay there with the public shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import (
    read_mail,
)
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

# --- subjects ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (b"=?utf-8?B?U2ltcGxlIHRleHQuIEhvdyBhcmUgeW91PyDQmtCw0Log0YLRiyDQv9C+0LY=?=\n"
         b" =?utf-8?B?0LjQstCw0LXRiNGMPw==?=",
         "Simple text. How are you? Как ты поживаешь?"),
        (b"=?iso-8859-2?Q?Wiadomo=B6=E6_z_biura?=", "Wiadomość z biura"),
        (b"=?windows-1250?Q?Zam=F3wienie?= nr 5", "Zamówienie nr 5"),
        (b"Re: =?utf-8?q?Spotkanie?= =?utf-8?q?_jutro?=", "Re: Spotkanie jutro"),
        (b"=?utf-8?B?xQ==?==?utf-8?B?gg==?=", "ł"),  # one character split across two words
        (b"=?x-unknown?Q?Zg=C5=82oszenie?=", "Zgłoszenie"),  # unknown charset: the fallbacks
        (b"=?utf-8?B?!!!notbase64?= tail", "=?utf-8?B?!!!notbase64?= tail"),  # broken word left as is
        # what is no base64 is not skipped: "!!!notb64" read as "notb64" reached the phone as "ž‹[ë"
        (b"=?utf-8?B?!!!notb64?= tail", "=?utf-8?B?!!!notb64?= tail"),
        ("Zażółć gęślą".encode(), "Zażółć gęślą"),  # raw 8-bit UTF-8
        ("Zażółć gęślą".encode("cp1250"), "Zażółć gęślą"),  # raw 8-bit windows-1250
        (b"A\xa0B", "A B"),  # NBSP
        # RFC 2047 6.2: the space between two encoded words goes, also when their charsets differ
        (b"=?UTF-8?Q?Za=C5=BC?= =?ISO-8859-2?Q?=F3=B3?=", "Zażół"),
    ],
    ids=["folded-b", "iso-8859-2-q", "cp1250-q", "adjacent-words", "split-char", "unknown-cs", "broken",
         "broken-decodable", "raw-utf8", "raw-cp1250", "nbsp", "adjacent-words-two-charsets"],
)  # fmt: skip
def test_subject_decoding(subject: bytes, expected: str) -> None:
    # Encoded words in any form clients produce, and raw 8-bit subjects, decode to the intended text.
    assert read_mail(mail("x", subject=subject)).subject == expected


@pytest.mark.parametrize(
    ("encoding", "ctype"),
    [
        ("iso-8859-2", "text/plain; charset=iso-8859-2"),
        ("cp1250", "text/plain; charset=iso-8859-2"),  # Outlook's mix-up: the C1 check still catches it
        ("iso-8859-2", 'multipart/alternative; boundary="b"'),
    ],
    ids=["latin2", "cp1250-labelled-latin2", "latin2-in-a-part"],
)
def test_a_raw_8bit_subject_is_read_in_the_body_charset_first(encoding: str, ctype: str) -> None:
    # windows-1250, the first fallback, reads ISO-8859-2's "ś" and "ą" as "¶" and "±" without an
    # error: the SMS said "gę¶l±" although the mail declared its charset.
    subject = "Zażółć gęślą".encode(encoding)
    if ctype.startswith("multipart"):
        body = b"--b\nContent-Type: text/plain; charset=iso-8859-2\n\n" + "Ćma śpi.".encode(encoding)
        body += b"\n--b--\n"
        got = read_mail(mail(body, subject=subject, ctype=ctype, cte=""))
    else:
        got = read_mail(mail("Ćma śpi.".encode(encoding), subject=subject, ctype=ctype))
    assert got.subject == "Zażółć gęślą" and got.body == "Ćma śpi."


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "iso-8859-2", "windows-1250"])
def test_a_raw_utf8_subject_stays_utf8_whatever_the_body_declares(charset: str) -> None:
    # A single-byte body charset reads UTF-8 bytes without an error: "Zażółć" became "ZaÅ¼Ã³Å‚Ä‡".
    got = read_mail(
        mail(
            "Ok".encode(charset), subject="Może jutro o 10?".encode(), ctype=f"text/plain; charset={charset}"
        )
    )
    assert got.subject == "Może jutro o 10?"


# An encoded word the header ends in without its "?=" (a client cut the header at a length) reached the
# phone as "=?utf-8?Q?Za=C5=BC=C3=B3=C5=82". It is read; a character whose bytes were cut goes, rather
# than turn the whole run into mojibake; a broken word inside the subject is still left as written.
UNCLOSED = [
    (b"=?utf-8?Q?Za=C5=BC=C3=B3=C5=82=C4=87", "Zażółć"),
    (b"Awaria: =?utf-8?B?Z8SZxZtsxIU", "Awaria: gęślą"),
    (b"=?utf-8?Q?Za=C5=BC?=", "Zaż"),
    (b"=?utf-8?Q?Zg=C5=82oszenie?= =?utf-8?Q?_pilne_=C5", "Zgłoszenie pilne"),
    (b"=?iso-8859-2?Q?=BFaba", "żaba"),
    (b"Cena =?x", "Cena =?x"),
    (b"=?utf-8?B?!!!notb64", "=?utf-8?B?!!!notb64"),
    # A cut inside a Q escape: its "=C" read as text made the run Latin-1 mojibake, "ZaĹźĂłĹ=8".
    (b"=?utf-8?Q?Za=C5=BC=C3=B3=C5=8", "Zażó"),
    (b"=?utf-8?Q?Za=C5=BC=C3=B3=C", "Zażó"),
    (b"=?utf-8?Q?Za=C5=BC=C3=B3=", "Zażó"),
    (b"=?iso-8859-2?Q?=BFaba=B", "żaba"),
    (b"=?utf-8?Q?1+1=3D2", "1+1=2"),  # a whole escape at the end stays
    # A base64 word cut one character past a quantum (its length 1 mod 4) was left raw.
    (b"=?utf-8?B?WmHFvMOzx", "Zażó"),
]


@pytest.mark.parametrize(("subject", "expected"), UNCLOSED)
def test_an_encoded_word_cut_at_the_end_is_read(subject: bytes, expected: str) -> None:
    assert read_mail(mail("x", subject=subject)).subject == expected


async def test_through_smtp_an_unclosed_encoded_subject_reaches_the_phone_decoded(tmp_path: Path) -> None:
    sent = [*UNCLOSED[:2], (b"=?utf-8?Q?Za=C5=BC=C3=B3=C5=8", "Zażó")]
    got = await phone_texts(tmp_path, [mail("Prosze sprawdzic", subject=s) for s, _ in sent])
    assert got == ["Zażółć: Prosze sprawdzic", "Awaria: gęślą: Prosze sprawdzic", "Zażó: Prosze sprawdzic"]
