"""read_mail(): MIME structure, charsets, subjects, refusals, machine mail (R-1.3, R-1.6, R-1.7, F15, F16)
and the promise that no byte sequence makes it raise anything but IntakeRefused."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pydantic
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import intake
from gateway.smtp.intake import (
    EMPTY_REPLY,
    ENCRYPTED_REPLY,
    ONLY_ATTACHMENTS_REPLY,
    ONLY_BELOW_END_REPLY,
    ONLY_QUOTE_REPLY,
    IntakeOptions,
    IntakeRefused,
    MailText,
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


# --- refusals (R-1.6) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reply"),
    [
        (mail("", subject=None), EMPTY_REPLY),
        (mail("  \n\n \t", subject=""), EMPTY_REPLY),
        (mail("> only the old message\n-- \nJan", subject=None), ONLY_QUOTE_REPLY),
        (mail("> only the old message\nEND\nfooter", subject=None), ONLY_QUOTE_REPLY),
        (mail("END\nfooter", subject=None), ONLY_BELOW_END_REPLY),
        (mail("\n  \nEND\nConfidential.\n-- \nJan", subject=""), ONLY_BELOW_END_REPLY),
        (multipart("mixed", part("image/png", "iVBO", "Content-Disposition: attachment\n"), subject=None),
         ONLY_ATTACHMENTS_REPLY),
    ],
    ids=["empty", "blank", "only-quote", "quote-above-end", "only-below-end", "blank-above-end",
         "only-attachment"],
)  # fmt: skip
def test_empty_text_is_refused(raw: bytes, reply: str) -> None:
    # Nothing to send: 554 5.6.0 with the reason, never an empty SMS.
    with pytest.raises(IntakeRefused) as refused:
        read_mail(raw)
    assert refused.value.reply == reply
    assert reply.startswith("554 5.6.0 ")


def test_unexpected_error_becomes_a_refusal_and_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug inside intake never escapes as a raw exception; it is logged for the operator.
    def broken(*args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(intake, "_body", broken)
    with structlog.testing.capture_logs() as logs, pytest.raises(IntakeRefused) as refused:
        read_mail(mail())
    assert refused.value.reply == "554 5.6.0 Message could not be read: malformed MIME structure"
    assert [(e["event"], e["log_level"]) for e in logs] == [("intake.unreadable", "error")]


# --- machine mail (R-1.7, F15, F16) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated (vacation)\n", "Auto-Submitted: auto-generated"),
        ("Precedence: junk\n", "Precedence: junk"),
        ("Precedence: list\n", "Precedence: list"),
        ("Precedence: auto_reply\n", "Precedence: auto_reply"),
        ("X-Autoreply: yes\n", "X-Autoreply: yes"),
        ("X-Autorespond: on\n", "X-Autorespond: on"),
    ],
)
def test_machine_headers(headers: str, reason: str) -> None:
    # RFC 3834 and de-facto auto-reply headers mark machine mail.
    m = read_mail(mail(headers=headers))
    assert m.automatic == reason


@pytest.mark.parametrize(
    "headers",
    ["Auto-Submitted: no\n", "X-Auto-Response-Suppress: All\n", "Precedence: bulk\n", "X-Autoreply: no\n"],
)
def test_human_mail_with_harmless_headers(headers: str) -> None:
    # Auto-Submitted "no", Outlook's suppress header alone and a bulk send are still human mail.
    assert read_mail(mail(headers=headers)).automatic is None


def test_precedence_bulk_is_flagged_not_automatic() -> None:
    # A staff bulk send still goes out; intake only marks it.
    m = read_mail(mail(headers="Precedence: bulk\n"))
    assert (m.bulk, m.automatic) == (True, None)


@pytest.mark.parametrize(
    ("subject", "headers", "automatic"),
    [
        ("Automatic reply: Offer", "Auto-Submitted: auto-generated\n", "out-of-office reply"),
        ("Odpowiedź automatyczna: Oferta", "X-Auto-Response-Suppress: All\n", "out-of-office reply"),
        ("Out of Office: Offer", "X-Autoreply: yes\n", "out-of-office reply"),
        ("Out of office tomorrow", "", None),
        ("Automatic reply: Offer", "X-Auto-Response-Suppress: DR, OOF, AutoReply\n", "out-of-office reply"),
        # Words a person writes, with only the header ordinary Outlook mails carry too: a guess.
        ("Nieobecność jutro", "X-Auto-Response-Suppress: All\n", "out-of-office reply (by its subject)"),
        ("Out of office Friday", "X-Auto-Response-Suppress: All\n", "out-of-office reply (by its subject)"),
        ("Poza biurem", "X-MS-Exchange-Inbox-Rules-Loop: anna@acme.example\n", "out-of-office reply"),
    ],
    ids=["en-outlook", "pl-outlook", "xautoreply", "subject-alone-is-human", "suppress-with-subject",
         "pl-words-with-suppress", "en-words-with-suppress", "words-with-rules-loop"],
)  # fmt: skip
def test_out_of_office(subject: str, headers: str, automatic: str | None) -> None:
    # An out-of-office subject needs a second machine sign; the subject alone is a person's words.
    assert read_mail(mail("I am away", subject=subject, headers=headers)).automatic == automatic


def test_empty_envelope_sender_is_a_bounce() -> None:
    # MAIL FROM:<> marks a bounce whatever the content says.
    assert read_mail(mail(), empty_sender=True).automatic == "bounce (empty envelope sender)"


def test_dsn_with_empty_sender_names_both() -> None:
    # The specific reason is kept and the bounce routing hint is added.
    raw = multipart(
        "report", part("text/plain", "Delivery failed"), part("message/delivery-status", "Action: failed\n"),
        params="; report-type=delivery-status",
    )  # fmt: skip
    m = read_mail(raw, empty_sender=True)
    assert m.automatic == "delivery status notification; bounce (empty envelope sender)"


@pytest.mark.parametrize(
    ("report_type", "reason"),
    [("delivery-status", "delivery status notification"), ("disposition-notification", "read receipt"),
     ("feedback-report", "report (feedback-report)")],
)  # fmt: skip
def test_multipart_report(report_type: str, reason: str) -> None:
    # DSN and MDN reports never become SMS (F16).
    raw = multipart("report", part("text/plain", "Report"), params=f"; report-type={report_type}")
    assert read_mail(raw).automatic == reason


def test_delivery_status_inside_mixed() -> None:
    # Some MTAs send the DSN part inside multipart/mixed.
    raw = multipart(
        "mixed", part("text/plain", "Failed"), part("message/delivery-status", "Action: failed\n")
    )
    assert read_mail(raw).automatic == "delivery status notification"


def test_mailer_daemon_sender() -> None:
    # A bounce relayed with a real envelope sender still comes From: MAILER-DAEMON.
    raw = mail().replace(
        b"From: Jan <jan@example.com>", b"From: MAILER-DAEMON@mx.example.com (Mail Delivery System)"
    )
    assert read_mail(raw).automatic == "bounce (From: MAILER-DAEMON)"


def test_machine_mail_is_never_refused_for_being_empty() -> None:
    # An empty auto-reply is recorded as machine mail, not refused.
    m = read_mail(mail("", subject=None, headers="Auto-Submitted: auto-replied\n"))
    assert (m.automatic, m.text) == ("Auto-Submitted: auto-replied", "")


def test_outlook_recall_with_tnef_class() -> None:
    # F15: Subject "Recall: ..." with MAPI class IPM.Outlook.Recall is machine mail.
    raw = multipart(
        "mixed",
        part("text/plain", 'Jan Kowalski would like to recall the message, "Offer".'),
        winmail(tnef_blob("IPM.Outlook.Recall")),
        subject="Recall: Offer",
    )
    assert read_mail(raw).automatic == "Outlook recall"


def test_outlook_recall_by_text_and_exchange_headers() -> None:
    # An Exchange recall converted for SMTP: its wording plus Outlook headers, without TNEF.
    raw = mail('Jan would like to recall the message, "Offer".', subject="Recall: Offer",
               headers="Thread-Index: AQHTXFWT3T6z7C8m9k2GE+t0ZVEeeQ==\n")  # fmt: skip
    assert read_mail(raw).automatic == "Outlook recall"


def test_recall_subject_alone_is_human() -> None:
    # A person may title a message "Recall: meeting"; without another sign it is sent.
    raw = mail(
        "Please remember the meeting at 10.", subject="Recall: meeting", headers="User-Agent: Thunderbird\n"
    )
    assert read_mail(raw).automatic is None


def test_tnef_read_receipt_class() -> None:
    # A read receipt that exists only as a MAPI class inside winmail.dat.
    raw = multipart("mixed", winmail(tnef_blob("IPM.Microsoft Mail.Read Receipt")), subject=None)
    assert read_mail(raw).automatic == "read receipt"


def test_corpus_ndr_is_machine_mail_even_with_real_sender() -> None:
    # F16 with the Office 365 NDR from the corpus: no SMS whether or not the envelope sender was empty.
    raw = (CORPUS / "bounce_flanker_office365_ndr.eml").read_bytes()
    assert read_mail(raw).automatic == "delivery status notification"


# --- never crash on network bytes ----------------------------------------------------------------------


def _read_or_refuse(raw: bytes) -> MailText | None:
    """read_mail turns even a bug into a 554, so a crash shows only as an error-level log event."""
    result: MailText | None = None
    with structlog.testing.capture_logs() as logs:
        try:
            result = read_mail(raw)
        except IntakeRefused as refused:
            assert refused.reply.startswith("554 5.6.0 ")
    crashes = [e for e in logs if e["log_level"] in ("error", "critical") or e.get("exc_info")]
    assert not crashes, f"unexpected exception inside intake: {crashes}"
    return result


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    # Arbitrary DATA: a MailText or IntakeRefused, nothing else.
    _read_or_refuse(raw)


_SAMPLES = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml")) if p.stat().st_size < 20_000]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_SAMPLES), st.integers(min_value=0), st.binary(min_size=1, max_size=40))
def test_damaged_corpus_mail_never_raises(raw: bytes, where: int, junk: bytes) -> None:
    # Real mails cut short and with junk spliced in (broken boundaries, encodings) never crash intake.
    cut = where % (len(raw) + 1)
    _read_or_refuse(raw[:cut] + junk + raw[cut : cut + where % 500])


def test_deeply_nested_multipart_is_refused_or_read() -> None:
    # A hostile nesting depth is bounded: the text is read up to a depth limit, deeper structures are
    # refused, and no RecursionError escapes.
    def nested(depth: int) -> bytes:
        levels = "".join(
            f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n' for i in range(depth)
        )
        return mail(
            f"{levels}--b{depth}\nContent-Type: text/plain\n\ndeep\n",
            ctype="multipart/mixed; boundary=b0",
            cte="",
        )

    assert read_mail(nested(10)).text == "Hi: deep"
    # Past the walker's depth limit (100) or the parser's stack (1500) the mail is refused: sending the
    # subject alone would lose the text below the limit without a word.
    for depth in (100, 1500):
        with structlog.testing.capture_logs() as logs, pytest.raises(IntakeRefused) as refused:
            read_mail(nested(depth))
        assert refused.value.reply == "554 5.6.0 Message could not be read: MIME nesting too deep"
        assert [(e["event"], e["log_level"]) for e in logs] == [("intake.too_deep", "info")]  # not a crash


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
