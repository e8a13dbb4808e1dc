"""`MailText` is a named tuple that `intake._read` fills with values of its fields' types, where it
was a pydantic model that validated them: the validation, made here by a model of the same fields,
gives back every value `read_mail` returns unchanged, of the same type all the way down, for every
mail of the corpus (both line-end forms) and for mails with what the rarer fields read (named
recipients, threads, expiry dates, Precedence, TNEF subjects, undecodable headers). A copy with
changes is made as pydantic's `model_copy` made it, and a mail's fields cannot be set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic
import pytest

from gateway.smtp.intake import IntakeOptions, IntakeRefused, MailText, read_mail
from tests.test_golden import CORPUS, to_crlf, wrap_body, wrap_tnef


class Validated(pydantic.BaseModel):
    """MailText as the pydantic model it was."""

    model_config = pydantic.ConfigDict(frozen=True)

    message_id: str | None
    subject: str
    body: str
    text: str
    automatic: str | None
    bulk: bool
    removed: list[str]
    in_reply_to: str | None
    thread: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    named: tuple[tuple[str, str], ...] = ()
    expiry_date: datetime | None = None
    expires: datetime | None = None


def same(a: Any, b: Any) -> bool:
    """Equal and of one type, down through lists and tuples."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


CRAFTED = [
    b"From: Jan <jan@acme.example>\n"
    b'To: "Pan Kowalski" <601123430@sms.example.com>, 601123431@sms.example.com\n'
    b"Cc: Anna <+48601123432@sms.example.com>\nSubject: =?utf-8?q?Spotkanie_=C5=BC?=\n"
    b"Message-ID: <m1@acme.example>\nIn-Reply-To: <a1.sms-reply@gw.example>\n"
    b"References: <r0@acme.example> <a1.sms-reply@gw.example>\nExpiry-Date: Mon, 7 Dec 2026 17:00:00 +0100\n"
    b"Expires: Thu, 19 Nov 1981 08:52:00 GMT\nPrecedence: bulk\n"
    b"Content-Type: text/plain; charset=utf-8\n\nTekst wiadomo\xc5\x9bci.\n",
    b"From: a@acme.example\nSubject: Za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87\nExpiry-Date: 0001\n"
    b"Content-Type: text/plain; charset=utf-8\n\nx\n",
    b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered\nAuto-Submitted: auto-replied\n\nbody\n",
]


def cases() -> list[bytes]:
    found = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    found += [wrap_body(p.read_bytes()) for p in sorted((CORPUS / "bodies").glob("*.txt"))]
    found += [wrap_tnef(p.read_bytes()) for p in sorted((CORPUS / "tnef").glob("*.tnef"))]
    found += CRAFTED
    return found + [to_crlf(raw) for raw in found]


@pytest.mark.parametrize("opts", [IntakeOptions(), IntakeOptions(subject_max=0, end_marker=None)])
def test_the_values_are_those_validation_gave(opts: IntakeOptions) -> None:
    read = 0
    for raw in cases():
        for empty_sender in (False, True):
            try:
                mail = read_mail(raw, opts, empty_sender=empty_sender)
            except IntakeRefused:
                continue
            read += 1
            fields = mail._asdict()
            validated = Validated(**fields)
            for name, value in fields.items():
                assert same(getattr(validated, name), value), (name, value, getattr(validated, name))
    assert read > 50


def test_a_copy_with_changes_and_no_setting() -> None:
    mail = read_mail(CRAFTED[0])
    assert mail.named and mail.thread and mail.bulk
    changed = mail.model_copy(update={"text": "new", "removed": ["x"]})
    assert changed.text == "new" and changed.removed == ["x"] and changed.subject == mail.subject
    assert mail.text != "new"
    assert mail.model_copy() == mail
    assert isinstance(changed, MailText)
    with pytest.raises(AttributeError):
        mail.text = "set"  # type: ignore[misc]
