"""Every mail the gateway writes survives whatever users and SMSCs put into it (issue 9, item 1).

`BUILDERS` lists every outbound mail with the user data it quotes; a new kind of mail (replies,
premium notices) is covered by adding one line to it.
"""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import errors, policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import bounce, forwarded, mailheaders, notify

DOMAIN = "sms.example.com"


@dataclass(frozen=True)
class Fuzz:
    """What outsiders control: a subject (or the text standing in for it), a text, ids, addresses."""

    subject: str
    text: str
    message_id: str
    rcpt: str
    reason: str


def _info(f: Fuzz, state: str) -> dict[str, object]:
    return dict(
        recipient="+48601123456",
        state=state,
        reason=f.reason,
        parts_total=3,
        text=f.text,
        created_at=1_700_000_000.0,
        mail_from=f.rcpt,
        header_message_id=f.message_id,
    )


_STAMP = dict(sender="gateway@sms.example.com", domain=DOMAIN)

BUILDERS: list[tuple[str, Callable[[Fuzz], bytes]]] = [
    (
        "confirmation",
        lambda f: notify.confirmation(
            **_STAMP,
            rcpt=f.rcpt,
            subject=f.subject,
            sent={"+48601123456": notify.Shape(11, "UCS-2", f.reason)},
            removed=[f.text[:50]],
            transliterated=False,
            in_reply_to=f.message_id,
        ),
    ),
    (
        "truncation",
        lambda f: notify.truncation_notice(
            **_STAMP, rcpt=f.rcpt, cuts={"+48601123456": notify.Cut(10, f.text)}, subject=f.subject
        ),
    ),
    (
        "held",
        lambda f: notify.held_notice(
            **_STAMP,
            rcpt=f.rcpt,
            recipients=["+48601123456"],
            until=datetime(2030, 1, 1, 8, 0, tzinfo=UTC),
            subject=f.subject,
        ),
    ),
    (
        "limit",
        lambda f: notify.notice(
            **_STAMP, rcpt=f.rcpt, subject=f"SMS limit reached: daily limit of {f.subject}", content=f.text
        ),
    ),
    (
        "info",
        lambda f: notify.notice(**_STAMP, rcpt=f.rcpt, subject="Your SMS limits and use", content=f.text),
    ),
    ("dsn", lambda f: bounce.dsn(_info(f, "failed"), **_STAMP, rcpt=f.rcpt, reporting_mta=f.subject)),
    ("delivered", lambda f: notify.delivered_notice(_info(f, "delivered"), **_STAMP, rcpt=f.rcpt)),
    (
        "sms_reply",
        lambda f: forwarded.sms_reply(
            phone=f.reason,
            phone_display=f.reason,
            domain=f.subject,
            rcpt=f.rcpt,
            subject=f.subject,
            text=f.text,
            quoted=f.text,
            quoted_at=datetime(2030, 1, 1, 8, 0, tzinfo=UTC),
            in_reply_to=f.message_id,
            note=f.reason,
        ),
    ),
    (
        "premium_mo",
        lambda f: forwarded.premium_mo(
            **_STAMP,
            rcpt=f.rcpt,
            answer_address=f.rcpt,
            password=f.subject,
            number=f.reason,
            phone=f.reason,
            text=f.text,
            received_at=datetime(2030, 1, 1, 8, 0, tzinfo=UTC),
            note=f.reason,
        ),
    ),
    (
        "premium_verification",
        lambda f: notify.premium_verification(
            **_STAMP,
            rcpt=f.rcpt,
            confirm_address=f.rcpt,
            password=f.subject,
            account=f.reason,
            numbers=["7355"],
            expires_at=datetime(2030, 1, 1, 8, 0, tzinfo=UTC),
        ),
    ),
    (
        "billing_file",
        lambda f: notify.billing_file(
            **_STAMP,
            rcpt=f.rcpt,
            subject=f.subject,
            summary=f.text,
            filename=f.reason,
            content=f.text.encode("utf-8", "surrogatepass"),
        ),
    ),
    (
        "premium_answer_cut",
        lambda f: notify.premium_answer_cut(
            **_STAMP, rcpt=f.rcpt, phone=f.reason, sent=f.text, dropped=f.text, in_reply_to=f.message_id
        ),
    ),
    (
        "suspended",
        lambda f: notify.suspended_notice(**_STAMP, rcpt=f.rcpt, account=f.subject, reason=f.reason),
    ),
]

# Line breaks of every kind Python knows, controls, surrogates, folding and long runs.
_NASTY = st.sampled_from(
    [
        "\r\n",
        "\n",
        "\r",
        "\r\n\t",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x85",
        "\u2028",
        "\u2029",
        "\x00",
        "\x7f",
        "\udcff",
        # Encoded words the email package would decode when given the value (an SMS sender ID
        # is 11 characters a phone user picks): a line break, a header, an undecodable byte.
        "=??q?=0AB?=",
        "=?utf-8?q?=0D=0AReply-To:x@e?=",
        "=??b?gA==?=",
    ]
)
_TEXT = st.lists(st.one_of(st.text(max_size=30), _NASTY), max_size=12).map("".join)
# A user's own Message-ID with an encoded word in it (valid dot-atom text).
_INJECTING_ID = "<=?utf-8?b?DQpCY2M6IGV2aWxAeC5jb20NCg0KRkFLRSBCT0RZ?=@acme.example>"
_MSGID = st.one_of(
    _TEXT,
    st.builds(lambda a, b, fold: f"{a}{fold}{b}", _TEXT, _TEXT, _NASTY),
    st.just("abc\r\n\tdef@host.example"),
    st.just("<a@b>\r\n <c@d>"),
    st.just(_INJECTING_ID),
)
_FUZZ = st.builds(Fuzz, subject=_TEXT, text=_TEXT, message_id=_MSGID, rcpt=_TEXT, reason=_TEXT)


# What CPython's parser, which reads headers as ASCII, finds in an address written in UTF-8 (RFC 6532).
_UTF8_ADDRESS = (errors.NonASCIILocalPartDefect, errors.UndecodableBytesDefect)


def _utf8_to(raw: bytes) -> bool:
    """The mail's To is one address written in UTF-8, as `mailheaders.address(…, utf8=True)` gives."""
    to = re.search(rb"^To: (.*?)\r?$", raw, re.MULTILINE)
    if to is None or to.group(1).isascii():
        return False
    written = to.group(1).decode("utf-8")
    assert mailheaders.address(written, utf8=True) == written
    return True


def _check(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert not msg.defects
    utf8_to = _utf8_to(raw)
    for part in msg.walk():
        for name, value in part.items():
            defects = getattr(value, "defects", ())
            if utf8_to and part is msg and name == "To":
                defects = [d for d in defects if not isinstance(d, _UTF8_ADDRESS)]
            assert not defects, (name, value)
            assert "\r" not in str(value) and "\n" not in str(value), (name, value)
    for name in ("Subject", "To", "Message-ID"):
        assert msg[name] is not None
    if msg["In-Reply-To"] is not None:
        assert mailheaders.msgid_token(str(msg["In-Reply-To"])) is not None


@pytest.mark.parametrize("kind", [k for k, _ in BUILDERS])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=_FUZZ)
def test_every_notice_builds_and_parses_back_clean(kind: str, f: Fuzz) -> None:
    build = dict(BUILDERS)[kind]
    _check(build(f))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@host.example>", "<abc@host.example>"),
        ("abc@host.example", "<abc@host.example>"),
        ("\r\n abc@host.example", "<abc@host.example>"),  # value folded onto the second line
        ("abc.def\r\n @host.example", "<abc.def@host.example>"),  # folded where the syntax allows
        ("abc\r\n\tdef@host.example", None),  # folded inside a word: no valid id
        ("no-at-sign", None),
        ("<a b@c>", None),
        ("x" * 300 + "@host", None),
        ("<=?utf-8?b?DQpCY2M6IGV2aWxAeC5jb20NCg0KRkFLRSBCT0RZ?=@acme.example>", None),  # see below
        ("<a=?b@host>", None),
        ("<a=b?c@host>", "<a=b?c@host>"),  # `=` and `?` apart are atext like any other
    ],
)
def test_message_ids_are_made_valid_or_dropped(value: str, expected: str | None) -> None:
    assert mailheaders.msgid(value) == expected


@pytest.mark.parametrize("kind", [k for k, _ in BUILDERS])
def test_an_encoded_word_in_a_message_id_adds_no_header(kind: str) -> None:
    # `=?utf-8?b?…?=` is valid dot-atom text, and the email package decoded it when writing
    # In-Reply-To: the user's own Message-ID put "Bcc: evil@x.com" and a fake body into the
    # reply mail carrying a phone's answer.
    f = Fuzz(subject="Spotkanie", text="Tak", message_id=_INJECTING_ID, rcpt="bob@acme.example", reason="x")
    raw = dict(BUILDERS)[kind](f)
    _check(raw)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None and b"FAKE BODY" not in raw


def test_an_encoded_word_from_outside_stays_text() -> None:
    # A sender ID `=??q?=0AB?=` in "SMS from … to …" ended the header block of the fallback mail.
    raw = notify.notice(
        sender="gw@sms.example.com", rcpt="ops@example.com", domain="sms.example.com",
        subject=mailheaders.text("SMS from =??q?=0AReply-To:x@e?= to +48100200300"), content="x\n",
    )  # fmt: skip
    msg = email.message_from_bytes(raw, policy=policy.strict)
    assert msg["Reply-To"] is None and "Reply-To:x@e" in str(msg["Subject"]).replace("\u2060", "")


def test_subject_is_one_capped_line() -> None:
    s = mailheaders.text("first line\r\nsecond\u2028third\x85\tfourth " + "x" * 300)
    assert s.startswith("first line second third fourth x")
    assert len(s) == mailheaders.SUBJECT_MAX and s.endswith("…")


@pytest.mark.parametrize("value", ["@", "a@", "@b", "a b@c", "zażółć@example.com", "", None])
def test_a_value_that_is_no_address_becomes_an_empty_group(value: str | None) -> None:
    # Found by the property test: a bare "@" made the header parser raise instead of being replaced.
    assert mailheaders.address(value) == "undisclosed-recipients:;"


def test_a_plain_address_is_kept() -> None:
    assert mailheaders.address(" jan@acme.pl ") == "jan@acme.pl"


@pytest.mark.parametrize("utf8", [False, True])
def test_a_domain_alone_not_in_ascii_is_written_in_a_labels(utf8: bool) -> None:
    # It became undisclosed-recipients, though RFC 5890 gives the domain an ASCII form.
    assert mailheaders.address("jan@żółw.pl", utf8=utf8) == "jan@xn--w-uga1v8h.pl"
    assert mailheaders.address("Jan@ŻÓŁW.PL", utf8=utf8) == "Jan@xn--w-uga1v8h.PL"


@pytest.mark.parametrize("value", ["zażółć@example.pl", "zażółć@żółw.pl", "anna@faß.de"])
def test_an_address_with_no_ascii_form_is_written_in_utf8_only_where_asked(value: str) -> None:
    # `faß.de` has no A-label here: Python's IDNA 2003 would write it as `fass.de`, another domain.
    assert mailheaders.address(value, utf8=True) == value
    assert mailheaders.address(value) == "undisclosed-recipients:;"
    assert not mailheaders.is_plain_address(value)


@pytest.mark.parametrize(
    ("rcpt", "to_line"),
    [
        ("józef@example.com", "To: józef@example.com".encode()),
        ("jan@żółw.pl", b"To: jan@xn--w-uga1v8h.pl"),
    ],
    ids=["utf8-local-part", "utf8-domain"],
)
@pytest.mark.parametrize("kind", [k for k, _ in BUILDERS])
def test_every_notice_to_a_utf8_address_names_it_in_to(kind: str, rcpt: str, to_line: bytes) -> None:
    # The To said undisclosed-recipients: the outbox did not ask for SMTPUTF8 then, and it does now.
    f = Fuzz(subject="Spotkanie", text="Tak", message_id="<a@acme.example>", rcpt=rcpt, reason="x")
    raw = dict(BUILDERS)[kind](f)
    _check(raw)
    assert next(line for line in raw.splitlines() if line.startswith(b"To:")) == to_line  # the mail's own


def _dsn(reason: str) -> bytes:
    """The bounce of a failed one-part SMS whose SMSC gave `reason`."""
    info = dict(
        recipient="+48601123456",
        state="failed",
        reason=reason,
        parts_total=1,
        text="hi",
        created_at=1_700_000_000.0,
        mail_from="anna@acme.example",
        header_message_id=None,
        subject="Hi",
    )
    return bounce.dsn(info, **_STAMP, rcpt="anna@acme.example", reporting_mta="gw.example")


def test_a_dsn_diagnostic_code_stays_a_plain_field_with_a_non_ascii_reason() -> None:
    # RFC 3464: "X-SMSC; <text>" that DSN readers parse; an encoded-word would hide the type too.
    raw = _dsn("UNDELIV err:001 — numer nieosiągalny")
    (line,) = [x for x in raw.split(b"\n") if x.startswith(b"Diagnostic-Code:")]
    assert line.strip() == b"Diagnostic-Code: X-SMSC; UNDELIV err:001 ? numer nieosi?galny"


@pytest.mark.parametrize(
    "reason", ["err =?q?=0AX-Injected: yes=0A?= end", "err =é?q?=0AX-Injected: yes=0A?= end"]
)
def test_a_dsn_diagnostic_code_never_becomes_an_encoded_word(reason: str) -> None:
    # The ASCII step turns a non-ASCII character after `=` into `?`: without care `=?` is back.
    raw = _dsn(reason)
    msg = email.message_from_bytes(raw, policy=policy.default)
    status = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
    diagnostic = str(status.get_payload()[1]["Diagnostic-Code"])
    assert "\n" not in diagnostic and "X-Injected" in diagnostic
    assert status.get_payload()[1]["X-Injected"] is None


def test_mail_no_mail_caused_is_auto_generated_and_answers_are_auto_replied() -> None:
    # RFC 3834: a premium confirmation, a suspension notice or a bill answers nothing.
    made = dict(sender="gw@sms.example.com", rcpt="konkurs@acme.pl", domain="sms.example.com")
    verify = notify.premium_verification(
        **made, confirm_address="confirm-x@sms.example.com", password="KP123", account="acme",
        numbers=["7355"], expires_at=datetime(2026, 12, 1, tzinfo=UTC),
    )  # fmt: skip
    suspended = notify.suspended_notice(**made, account="acme", reason="too many failures")
    bounce = _dsn("x")
    auto = lambda raw: email.message_from_bytes(raw, policy=policy.default)["Auto-Submitted"]  # noqa: E731
    assert [auto(verify), auto(suspended)] == ["auto-generated", "auto-generated"]
    assert auto(bounce) == "auto-replied"


def test_ascii_exact_keeps_a_checked_token_and_sanitises_anything_else() -> None:
    # A DSN's Original-Envelope-Id comes back as sent, its runs of spaces included (RFC 3464 2.2.1);
    # a value the MAIL checks would have refused (an old row) goes through the sanitiser as before.
    assert mailheaders.ascii_exact("a   b", limit=100) == "a   b"
    exact, text = mailheaders.ascii_exact, mailheaders.ascii_text
    assert exact("a\r\nBcc: x@y", limit=100) == text("a\r\nBcc: x@y", limit=100)
    assert "\n" not in mailheaders.ascii_exact("a\r\nBcc: x@y", limit=100)
    assert exact("=?utf-8?q?x?=", limit=100) == text("=?utf-8?q?x?=", limit=100)
    assert mailheaders.ascii_exact("zażółć", limit=100).isascii()
