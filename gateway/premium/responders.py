"""A responder's answer to a premium confirmation (R-4.3): "Only a person's mail confirms".

The machine-mail rules (`gateway.smtp.automail`) are made for staff mail that becomes an SMS: there
an out-of-office subject counts only with a header beside it, or around one of the gateway's answer
mails, and `Precedence: bulk` or `X-Loop` only in a reply to an answer mail, since a person's mail
may carry either. At a confirmation address the stakes are the other way: a responder taken for a
person confirms the address for the public's paid SMS, and nobody read the confirmation. So here an
out-of-office subject around the confirmation's own subject ("Automatic reply: Confirm premium SMS
service KP123"), or a responder's mark in the headers, is automatic mail too; a person's plain
"Re: Confirm premium SMS service KP123" (what Outlook makes) is not.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import get_args

from gateway.smtp.automail import OOF_SUBJECT, PRECEDENCE_NAMES, RESPONDER_MARKS, first_headers, header_reason
from gateway.wording import PREMIUM_CONFIRM_SUBJECT, Language

_HEADERS = BytesParser(policy=compat32)
_HEAD_BYTES = 65536  # as the relay port reads a mail's author: the headers are within it

# `automail.OOF_SUBJECT` anywhere in the subject, not only at its start: a responder writes its word
# before the subject it answers or after it ("Confirm … KP123 [Auto-Reply]"), and may be answered
# itself ("RE: Automatic reply: …").
_OOF_WORDS = re.compile(r"(?<!\w)" + OOF_SUBJECT.pattern.removeprefix(r"^\s*"), re.IGNORECASE)
assert OOF_SUBJECT.pattern.startswith(r"^\s*("), "automail.OOF_SUBJECT's form changed: read it again"

# The headers responders put on their answers are automail's (`RESPONDER_MARKS`: Exchange's
# inbox-rule loop header, procmail's and vacation(1)'s X-Loop); Precedence is read apart, every field.
_PRECEDENCE_MACHINE = ("bulk", "junk", "list", "auto_reply", "auto-reply")
# The one reason a person's words may give (no header says so): refused aloud, not in silence.
SUBJECT_GUESS = "out-of-office reply (to the confirmation)"


def confirm_stems(password: str) -> tuple[str, ...]:
    """The confirmation's subject in every language the gateway writes it in (`[gateway] language`
    may have changed since it was mailed), casefolded, with and without the service's password."""
    stems = []
    for lang in get_args(Language):
        whole = PREMIUM_CONFIRM_SUBJECT(lang, password=password)
        stems += [whole, whole.removesuffix(password).strip()]
    return tuple(dict.fromkeys(s.casefold() for s in stems if s.strip()))


def responder_reason(raw: bytes, subject: str | None, password: str) -> str | None:
    """Why a mail to a confirmation address is a responder's, though `automail` found no machine
    mark on it; None for a person's mail. `subject` is the decoded subject when the mail was read
    (None: read it from `raw`), `password` the service's."""
    head = _HEADERS.parsebytes(raw.replace(b"\r\n", b"\n")[:_HEAD_BYTES], headersonly=True)
    headers = first_headers(head)
    if (mark := next((name for name in RESPONDER_MARKS if name in headers), None)) is not None:
        return f"automatic reply ({_field_name(head, mark)})"
    for name in PRECEDENCE_NAMES:
        for value in head.get_all(name) or ():
            word = str(value).strip().lower()
            if word.startswith(_PRECEDENCE_MACHINE):
                return f"automatic reply (Precedence: {word.split()[0].split(';')[0]})"
    if (reason := header_reason(headers)) is not None:
        # Read by `automail` for a mail the intake read; one it refused (nesting too deep) came here
        # with its Auto-Submitted unread, and confirmed.
        return reason
    if subject is None:
        subject = _decoded(head.get("Subject", ""))
    if _oof_around_confirmation(subject, password):
        return SUBJECT_GUESS
    return None


def _oof_around_confirmation(subject: str, password: str) -> bool:
    """An out-of-office word beside the confirmation's own subject: a responder's template. Read in
    what is left once the subject is taken out, so that the subject's own words decide nothing."""
    lowered = " ".join(subject.split()).casefold()
    stems = confirm_stems(password)
    if not any(stem in lowered for stem in stems):
        return False
    for stem in stems:  # the longest first: the whole subject, then without its password
        lowered = lowered.replace(stem, " ")
    return _OOF_WORDS.search(lowered) is not None


def _field_name(head: Message, lowered: str) -> str:
    """The header's name as the mail wrote it, for the reason recorded (`X-Loop`)."""
    return next((name for name in head.keys() if name.lower() == lowered), lowered)


def _decoded(value: object) -> str:
    """A raw Subject as a person reads it (RFC 2047 words decoded); as written when it cannot be."""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)
