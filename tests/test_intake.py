"""read_mail(): its public shape, the subject cut, body charsets and MIME structure (R-1.3); and the
mail builders other test modules import. Subjects' decoding, refusals with the promise that no byte
sequence makes it raise anything but IntakeRefused (R-1.6), and machine mail (R-1.7, F15, F16) have
modules of their own: test_intake_subjects.py, test_intake_refusals.py, test_intake_machine_mail.py."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pydantic
import pytest

from gateway.smtp.intake import (
    ENCRYPTED_REPLY,
    IntakeOptions,
    IntakeRefused,
    read_mail,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emails"


def mail(
    body: str | bytes = "Hello",
    *,
    subject: str | bytes | None = "Hi",
    headers: str = "",
    ctype: str = "text/plain; charset=utf-8",
    cte: str = "8bit",
) -> bytes:
    """A complete message as SMTP DATA (CRLF line ends); str parts are encoded as UTF-8."""
    head = "From: Jan <jan@example.com>\nTo: 601123456@sms.example.com\nMessage-ID: <m1@example.com>\n"
    head += "MIME-Version: 1.0\n" + headers
    raw = head.encode()
    if subject is not None:
        raw += b"Subject: " + (subject if isinstance(subject, bytes) else subject.encode()) + b"\n"
    if ctype:
        raw += f"Content-Type: {ctype}\n".encode()
    if cte:
        raw += f"Content-Transfer-Encoding: {cte}\n".encode()
    raw += b"\n" + (body if isinstance(body, bytes) else body.encode())
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def part(ctype: str, body: str | bytes, extra: str = "") -> bytes:
    data = body if isinstance(body, bytes) else body.encode()
    return f"Content-Type: {ctype}\n{extra}\n".encode() + data


def multipart(
    subtype: str, *parts: bytes, subject: str | None = "Hi", headers: str = "", params: str = ""
) -> bytes:
    body = b"".join(b"--BOUND\n" + p + b"\n" for p in parts) + b"--BOUND--\n"
    return mail(
        body, subject=subject, headers=headers, ctype=f'multipart/{subtype}; boundary="BOUND"{params}', cte=""
    )


def tnef_blob(msg_class: str, body: str | None = None) -> bytes:
    """A minimal winmail.dat: version, OEM codepage 1252, message class and optionally a plain body."""

    def attr(name: int, typ: int, data: bytes) -> bytes:
        return struct.pack("<BHHI", 1, name, typ, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 1) + attr(0x9006, 8, struct.pack("<I", 0x10000))
    out += attr(0x9007, 8, struct.pack("<II", 1252, 0)) + attr(0x8008, 1, msg_class.encode() + b"\0")
    return out + (attr(0x800C, 2, body.encode("cp1252")) if body else b"")


def winmail(blob: bytes) -> bytes:
    return part(
        'application/ms-tnef; name="winmail.dat"',
        base64.encodebytes(blob),
        'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="winmail.dat"\n',
    )


# --- the public shape --------------------------------------------------------------------------------


def test_plain_mail_fields() -> None:
    # Subject, separator and body make the text; ids lose their angle brackets.
    m = read_mail(mail("Wizyta jutro o 10:00.", headers="In-Reply-To: <prev@example.com>\n"))
    assert m.text == "Hi: Wizyta jutro o 10:00."
    assert (m.message_id, m.in_reply_to, m.subject, m.body) == (
        "m1@example.com",
        "prev@example.com",
        "Hi",
        m.body,
    )
    assert m.automatic is None and m.bulk is False and m.removed == []


def test_mailtext_is_frozen() -> None:
    # The SMTP handler shares the result; nobody may change it afterwards.
    m = read_mail(mail())
    with pytest.raises(pydantic.ValidationError):
        m.text = "changed"  # type: ignore[misc]


def test_missing_message_id_is_none() -> None:
    # No Message-ID header: None, so that duplicate detection falls back to content.
    raw = mail().replace(b"Message-ID: <m1@example.com>\r\n", b"")
    assert read_mail(raw).message_id is None


def test_the_phone_named_by_a_reply_mail_is_not_sent_back_to_it() -> None:
    # puts "(SMS from +48 …)" after a reply mail's topic; answered outside its conversation,
    # the phone read its own number and the topic was cut to fit ("Re: Spotkanie (SMS from +48").
    # The reply prefixes go too: they only ate the subject's length.
    m = read_mail(mail("No thread", subject="Re: Re: Spotkanie (SMS from +48 601 123 456)"))
    assert m.text == "Spotkanie: No thread"
    assert m.subject == "Re: Re: Spotkanie (SMS from +48 601 123 456)" and m.removed == []
    assert read_mail(mail("x", subject="Koszt (SMS from ESKA)")).text == "Koszt (SMS from ESKA): x"


def test_subject_is_cut_at_a_word_boundary() -> None:
    # At most subject_max characters; a word is not cut in half when a space is near the limit.
    m = read_mail(mail("Body", subject="Re: running server as root (Was: Re: PUT method)"))
    assert m.text == "running server as root (Was: Body"
    assert m.subject == "Re: running server as root (Was: Re: PUT method)"
    assert "subject cut to 30 characters" in m.removed


@pytest.mark.parametrize(
    ("subject", "kept"),
    [
        ("Mecz:" + "🇵🇱🇩🇪" * 10, "Mecz:" + "🇵🇱🇩🇪" * 6),  # 30 code points end after 🇵
        ("Brawo" + "!" * 24 + "👍🏽 super", "Brawo" + "!" * 24),  # ... between 👍 and its skin tone
        ("x" * 27 + "👨\u200d👩\u200d👧", "x" * 27),  # ... inside a ZWJ sequence
        ("x" * 29 + "q\u0301", "x" * 29),  # ... between a letter and its accent
        ("q" + "\u0301" * 40, "q" + "\u0301" * 29),  # one cluster longer than the limit: cut where it must be
    ],
    ids=["flag", "skin-tone", "zwj", "mark", "long-cluster"],
)
def test_subject_cut_keeps_grapheme_clusters_whole(subject: str, kept: str) -> None:
    # A flag cut in half shows on the phone as a boxed letter.
    m = read_mail(mail("body", subject=subject))
    assert m.text == kept + ": body" and "subject cut to 30 characters" in m.removed


def test_subject_options() -> None:
    # subject_max=0 drops the subject; the separator is configurable; either part may be alone.
    assert read_mail(mail("Body"), IntakeOptions(subject_max=0)).text == "Body"
    assert read_mail(mail("Body"), IntakeOptions(separator=" - ")).text == "Hi - Body"
    assert read_mail(mail("")).text == "Hi"
    assert read_mail(mail("Body", subject=None)).text == "Body"


def test_end_marker_option() -> None:
    # The account's end marker cuts the disclaimer a mail server appended.
    raw = mail("Text\nKONIEC\nThis e-mail is confidential.")
    assert read_mail(raw, IntakeOptions(end_marker="KONIEC")).text == "Hi: Text"
    assert read_mail(raw, IntakeOptions(end_marker=None)).text.endswith("confidential.")


# --- body charsets -----------------------------------------------------------------------------------

PL = "Zażółć gęślą jaźń"


@pytest.mark.parametrize(
    ("body", "ctype", "cte"),
    [
        (PL.encode("iso-8859-2"), "text/plain; charset=iso-8859-2", "8bit"),
        (PL.encode("cp1250"), "text/plain; charset=windows-1250", "8bit"),
        (PL.encode("cp1250"), "text/plain; charset=utf-8", "8bit"),  # declared wrongly
        (PL.encode("cp1250"), "text/plain; charset=iso-8859-2", "8bit"),  # the usual Outlook mix-up
        (PL.encode(), "text/plain", "8bit"),  # no charset
        (PL.encode("cp1250"), "text/plain", "8bit"),
        (PL.encode(), "text/plain; charset=x-no-such-charset", "8bit"),
        (PL.encode(), 'text/plain; charset="UTF8"', "8bit"),
        (b"\xef\xbb\xbf" + PL.encode(), "text/plain", "8bit"),  # BOM
        (base64.b64encode(PL.encode("iso-8859-2")), "text/plain; charset=ISO-8859-2", "base64"),
        (b"Za=BF=F3=B3=E6 g=EA=B6l=B1 ja=BC=F1", "text/plain; charset=iso-8859-2", "quoted-printable"),
        (PL.encode("utf-16"), "text/plain; charset=utf-16", "binary"),
    ],
    ids=["iso-8859-2", "cp1250", "utf8-label-on-cp1250", "latin2-label-on-cp1250", "undeclared-utf8",
         "undeclared-cp1250", "unknown-charset", "alias", "bom", "base64", "qp", "utf16"],
)  # fmt: skip
def test_body_charsets(body: bytes, ctype: str, cte: str) -> None:
    # Declared, wrongly declared, missing and unknown charsets all give the Polish text back.
    assert read_mail(mail(body, ctype=ctype, cte=cte)).text == f"Hi: {PL}"


def test_charset_fallbacks_are_configurable() -> None:
    # An installation can put iso-8859-2 before windows-1250 for undeclared 8-bit text.
    raw = mail("ąś".encode("iso-8859-2"), ctype="text/plain")
    assert read_mail(raw, IntakeOptions(charset_fallbacks=("iso-8859-2",))).body == "ąś"


def test_koi8r_quoted_printable() -> None:
    # Cyrillic in koi8-r QP, as Exchange Online sends it.
    raw = mail("=DB=CF=D3=D4=C9=CA", ctype="text/plain; charset=koi8-r", cte="quoted-printable")
    assert read_mail(raw).body == "шостий"


def test_format_flowed_is_unwrapped() -> None:
    # RFC 3676 soft breaks are joined; DelSp removes the space the client added.
    raw = mail("Spotkanie jest \njutro o 10:00.\n", ctype='text/plain; charset=utf-8; format="flowed"')
    assert read_mail(raw).body == "Spotkanie jest jutro o 10:00."
    raw = mail("Spotka \nnie\n", ctype="text/plain; charset=utf-8; format=flowed; delsp=yes")
    assert read_mail(raw).body == "Spotkanie"


# --- MIME structure ----------------------------------------------------------------------------------


def test_alternative_prefers_plain() -> None:
    # With both, the text/plain part is the message; the HTML twin is ignored.
    raw = multipart("alternative", part("text/html", "<p>HTML</p>"), part("text/plain", "Plain"))
    assert read_mail(raw).body == "Plain"


def test_html_only_is_converted() -> None:
    # HTML-only mail (Outlook, webmail) becomes readable text, and the sender is told.
    html = "<html><head><style>p{color:red}</style></head><body><p>Line&nbsp;one</p><p>Two</p></body></html>"
    m = read_mail(mail(html, ctype="text/html; charset=utf-8"))
    assert m.body == "Line one\n\nTwo"
    assert "HTML converted" in m.removed


def test_plain_part_that_is_really_html() -> None:
    # A text/plain part holding markup is converted, not sent as tags.
    m = read_mail(mail("<div>Hello</div><div><br></div><div>Bob</div>"))
    assert m.body == "Hello\n\nBob"


def test_html_reply_quote_containers_are_dropped() -> None:
    # Gmail's gmail_quote and Thunderbird's cite blockquote hold the earlier message.
    html = (
        '<div>New text</div><div class="gmail_quote"><div>On Mon, Bob wrote:</div>'
        '<blockquote type="cite">Old text</blockquote></div>'
    )
    m = read_mail(mail(html, ctype="text/html"))
    assert m.body == "New text"
    assert "quoted reply" in m.removed


def test_attachments_are_ignored_and_counted() -> None:
    # A PDF and an inline image are not sent; the sender learns how many parts were left out.
    raw = multipart(
        "mixed",
        part("text/plain", "See attached"),
        part("application/pdf", "JVBERi0=", "Content-Disposition: attachment; filename=a.pdf\n"),
        part("image/png", "iVBORw0KGgo=", "Content-Disposition: inline\n"),
    )
    m = read_mail(raw)
    assert m.body == "See attached"
    assert "attachments not sent (2)" in m.removed


def test_text_attachment_is_not_the_body() -> None:
    # A .txt file attached to an empty mail is an attachment, not the message.
    raw = multipart(
        "mixed", part("text/plain", "file content", "Content-Disposition: attachment; filename=a.txt\n")
    )
    assert read_mail(raw).text == "Hi"


def test_apple_mail_split_text_parts_are_joined() -> None:
    # Apple Mail puts text before and after an inline image in separate parts.
    raw = multipart(
        "mixed", part("text/plain", "Before"), part("image/jpeg", "/9j/"), part("text/plain", "After")
    )
    assert read_mail(raw).body == "Before\n\nAfter"


def test_forward_as_attachment_without_own_text() -> None:
    # With no text of its own, the enclosed message (forward as attachment) is what was meant.
    inner = b"Subject: Old\nContent-Type: text/plain\n\nForwarded words\n"
    m = read_mail(multipart("mixed", part("message/rfc822", inner)))
    assert m.body == "Forwarded words"
    assert "text of the attached message used" in m.removed


def test_smime_signed_takes_the_signed_content() -> None:
    # Corporate Outlook signs; the signature part is not text and not an attachment to report.
    raw = multipart(
        "signed",
        part("text/plain; charset=utf-8", "Signed words"),
        part("application/pkcs7-signature; name=smime.p7s", "MIIG", "Content-Disposition: attachment\n"),
        params='; protocol="application/pkcs7-signature"',
    )
    m = read_mail(raw)
    assert m.body == "Signed words"


@pytest.mark.parametrize(
    "raw",
    [
        mail("MIAGCSqGSIb3DQEHA6CAMIACAQAx", subject=None,
             ctype="application/pkcs7-mime; smime-type=enveloped-data", cte="base64"),
        multipart("encrypted", part("application/pgp-encrypted", "Version: 1"),
                  part("application/octet-stream", "-----BEGIN PGP MESSAGE-----"), subject=None),
        mail("-----BEGIN PGP MESSAGE-----\n\nhQEMA5qETcGag\n-----END PGP MESSAGE-----\n"),
        multipart("encrypted", part("application/pgp-encrypted", "Version: 1"),
                  part("application/octet-stream", "-----BEGIN PGP MESSAGE-----")),
    ],
    ids=["smime", "pgp-mime", "pgp-inline-with-subject", "pgp-mime-with-subject"],
)  # fmt: skip
def test_encrypted_mail_is_refused(raw: bytes) -> None:
    # Text we cannot read is refused with a reason, never sent as gibberish or as the subject alone.
    with pytest.raises(IntakeRefused) as refused:
        read_mail(raw)
    assert refused.value.reply == ENCRYPTED_REPLY


def test_octet_stream_body_that_is_text() -> None:
    # Outlook Express sent the whole body as application/octet-stream: small text is read.
    raw = mail(
        base64.b64encode("текст".encode()), ctype='application/octet-stream; name="a.txt"', cte="base64"
    )
    assert read_mail(raw).text == "Hi: текст"


def test_octet_stream_body_that_is_binary() -> None:
    # A binary blob as the whole body is not text: only the subject is sent.
    raw = mail(base64.b64encode(bytes(range(256))), ctype="application/octet-stream", cte="base64")
    assert read_mail(raw).text == "Hi"


def test_tnef_body_when_no_text_part() -> None:
    # Outlook's winmail.dat is the only body: its plain body is used.
    m = read_mail(multipart("mixed", winmail(tnef_blob("IPM.Note", "Body from Outlook"))))
    assert m.body == "Body from Outlook"
    assert "Outlook TNEF body used" in m.removed


def test_text_part_wins_over_tnef() -> None:
    # Exchange sends text/plain next to winmail.dat; the MIME text is preferred.
    raw = multipart("mixed", part("text/plain", "MIME text"), winmail(tnef_blob("IPM.Note", "TNEF text")))
    assert read_mail(raw).body == "MIME text"


def test_base64_label_on_plain_text() -> None:
    # A client that claims base64 but sends plain text: the text goes through, not decoded noise.
    assert read_mail(mail("Hello there!", cte="base64")).body == "Hello there!"


def test_broken_boundary_is_salvaged() -> None:
    # The header's boundary never occurs: the parts are found by their own boundary lines.
    raw = mail(
        "--other\nContent-Type: text/plain\n\nSalvaged\n--other--\n", ctype="multipart/mixed; boundary=x"
    )
    assert read_mail(raw).body == "Salvaged"


def test_html_meta_charset_is_used() -> None:
    # An HTML part without a MIME charset declares it in a meta tag.
    html = '<html><head><meta charset="iso-8859-2"></head><body>Gęś</body></html>'.encode("iso-8859-2")
    assert read_mail(mail(html, ctype="text/html")).body == "Gęś"
