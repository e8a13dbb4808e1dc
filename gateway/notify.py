"""Builds the emails the gateway sends to people; no I/O.

Notices are plain text; a failed SMS's bounce is built in `gateway.bounce` on `stamp` from here.
Everything returns bytes ready for the
outbox, with a fresh Message-ID and Date. Every header value that comes from a user or an SMSC
goes through `gateway.mailheaders`, and every body through `mailheaders.body`, so that no subject,
text or Message-ID can make a builder raise (which would refuse the mail with `451`, or make the
SMSC redeliver a receipt, forever).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid
from typing import Any, NamedTuple, TypeVar

from gateway import confirmwords as cw
from gateway import mailheaders as h
from gateway import wording as w
from gateway.reasons import human_reason
from gateway.wording import Language
from smsc.plainchars import transliterate_text

_Said = TypeVar("_Said", bound=tuple[Any, ...])


def stamp(
    msg: Message,
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    subject: str,
    domain: str,
    in_reply_to: str | None = None,
    auto: str = "auto-replied",
) -> None:
    """The headers every mail of the gateway carries. RFC 3834: `auto-replied` for what answers a
    mail (bounces, notices about it), `auto-generated` for what no mail caused; either way
    nobody's program answers it."""
    msg["From"] = f"SMS gateway <{h.address(sender)}>"
    msg["To"] = h.recipient(msg, rcpt)
    msg["Subject"] = h.text(subject)
    msg["Date"] = mail_date(now)
    msg["Message-ID"] = make_msgid(domain=h.text(domain, limit=200).replace(" ", "") or None)
    msg["Auto-Submitted"] = auto
    ref = h.msgid(in_reply_to)
    if ref is not None:
        msg["In-Reply-To"] = ref
        msg["References"] = ref


def mail_date(now: float | None) -> str:
    """The Date header at `now`, the daemon's clock (`Store.clock`) as in every time it records: the
    host's, read here, dated a mail apart from the rest of its record (a clock set by a test, or one
    the daemon keeps from going back). None, for a mail built alone, takes the host's."""
    return format_datetime(datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC))


def plain(msg: EmailMessage, content: str) -> bytes:
    set_text(msg, content)
    return msg.as_bytes()


def set_text(msg: EmailMessage, content: str) -> None:
    """The body as UTF-8, quoted-printable once it is not ASCII (as the answers in forwarded.py are).

    The email package would choose `8bit` for short lines: a relay without 8BITMIME then has to
    convert the notice, or passes it on as it is to the next hop that cannot take it.
    """
    text = h.body(content)
    msg.set_content(text, charset="utf-8", cte=None if text.isascii() else "quoted-printable")


def delivered_notice(
    info: dict[str, Any],
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    lang: Language = "en",
) -> bytes:
    """A delivery, or an `unreported` end: the SMSC took the SMS and its report never came. That one
    is no bounce (it most likely reached the phone) but says plainly that nobody confirmed it."""
    number = h.text(info["recipient"], limit=64)
    parts = w.PARTS(lang, n=info["parts_total"])
    if info.get("state") == "unreported":
        subject = w.UNREPORTED_SUBJECT(lang, number=number)
        said = info.get("reason")
        reason = human_reason(said, lang) if said else w.UNREPORTED_NO_REASON(lang)
        text = w.UNREPORTED_TEXT(lang, number=number, parts=parts, reason=reason)
    else:
        subject = w.DELIVERED_SUBJECT(lang, number=number)
        text = w.DELIVERED_TEXT(lang, number=number, parts=parts)
    msg = EmailMessage(policy=h.POLICY)
    stamp(
        msg,
        now=now,
        sender=sender,
        rcpt=rcpt,
        subject=subject,
        domain=domain,
        in_reply_to=info.get("header_message_id"),
    )
    return plain(msg, text)


class Cut(NamedTuple):
    """Where one number's SMS text was cut: a mail's numbers need not share it (an answer in a
    conversation goes to its phone without the subject, shorter than the others' text)."""

    parts: int
    dropped: str


def truncation_notice(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    cuts: Mapping[str, Cut],
    subject: str,
    in_reply_to: str | None = None,
    lang: Language = "en",
) -> bytes:
    """R-1.5: the text was longer than the allowed number of parts; say where it was cut, for each
    number whose text was (`cuts`, in the mail's order), and only for those: a phone that got its
    whole text was named as missing a text it had. Numbers cut alike share one paragraph.

    Like every notice about one mail, it answers that mail (`in_reply_to`, its Message-ID), so that
    the mail client files it with it rather than as a conversation of its own."""
    msg = EmailMessage(policy=h.POLICY)
    subject = w.SHORTENED_SUBJECT(lang, subject=subject)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    paragraphs = []
    for cut, numbers in _alike(cuts).items():
        preview = cut.dropped if len(cut.dropped) <= 400 else cut.dropped[:400] + "…"
        paragraphs.append(
            w.SHORTENED_TEXT(lang, recipients=", ".join(numbers), parts=cut.parts, preview=preview)
        )
    return plain(msg, "\n".join(paragraphs))


def held_notice(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    recipients: list[str],
    until: datetime,
    subject: str,
    in_reply_to: str | None = None,
    lang: Language = "en",
    expires: datetime | None = None,
) -> bytes:
    """R-2.4: bulk mail in the account's quiet hours is held, not dropped; the sender learns until when.

    `expires`: the mail's own validity (Expires:, Expiry-Date) where it ends before the hours do. Its
    SMS then expires unsent: "will be sent at 07:00" told the sender of an SMS that never went."""
    msg = EmailMessage(policy=h.POLICY)
    subject = w.HELD_SUBJECT(lang, until=f"{until:%H:%M}", subject=subject)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    when = f"{until:%Y-%m-%d %H:%M %Z}".strip()
    numbers = ", ".join(recipients)
    if expires is not None and expires < until:
        ends = f"{expires.astimezone(until.tzinfo):%Y-%m-%d %H:%M %Z}".strip()
        return plain(msg, w.HELD_EXPIRES_TEXT(lang, recipients=numbers, when=when, expires=ends))
    return plain(msg, w.HELD_TEXT(lang, recipients=numbers, when=when))


def suspended_notice(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    account: str,
    reason: str,
    lang: Language = "en",
) -> bytes:
    msg = EmailMessage(policy=h.POLICY)
    subject = w.SUSPENDED_SUBJECT(lang, account=account)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, auto="auto-generated")
    return plain(msg, w.SUSPENDED_TEXT(lang, account=account, reason=reason))


class Shape(NamedTuple):
    """What one number's SMS is, as the confirmation tells it: a mail's numbers need not share it
    (an answer in a conversation goes to its phone without the subject: fewer parts, maybe GSM)."""

    parts: int
    coding: str
    why: str | None = None  # what forced UCS-2
    cut: str | None = None  # "text past 10 parts", where this number's text was cut


def confirmation(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    subject: str,
    sent: Mapping[str, Shape],
    removed: list[str],
    transliterated: bool,
    in_reply_to: str | None,
    plain_punctuation: bool = False,
    lang: Language = "en",
    valid_until: datetime | None = None,
) -> bytes:
    """R-1.9: what was accepted, per recipient (`sent`, in the mail's order), and why it costs what
    it costs; numbers whose SMS are alike share a line, so that a mail to 50 numbers stays short.
    `valid_until`: the mail's own expiry (Outlook's "Expires after"), after which its SMS is not
    delivered."""
    msg = EmailMessage(policy=h.POLICY)
    stamp(
        msg,
        now=now,
        sender=sender,
        rcpt=rcpt,
        subject=w.ACCEPTED_SUBJECT(lang, subject=subject),
        domain=domain,
        in_reply_to=in_reply_to,
    )
    lines = []
    for shape, numbers in _alike(sent).items():
        said = "; ".join(w.label_words(label, lang) for label in (shape.why, shape.cut) if label)
        encoding = shape.coding + (f" ({said})" if said else "")
        lines.append(cw.accepted_line(lang, numbers, shape.parts, encoding))
    notes = []
    if transliterated:
        notes.append(w.ACCEPTED_TRANSLITERATED(lang))
    if plain_punctuation:
        notes.append(w.ACCEPTED_PLAIN_PUNCTUATION(lang))
    if removed:
        notes.append(w.ACCEPTED_REMOVED(lang, removed="; ".join(w.label_words(r, lang) for r in removed)))
    if valid_until is not None:
        notes.append(w.ACCEPTED_VALID_UNTIL(lang, until=f"{valid_until:%Y-%m-%d %H:%M %Z}".strip()))
    return plain(
        msg,
        w.ACCEPTED_TEXT(lang)
        + "\n\n"
        + "\n".join(lines)
        + ("\n\n" + "\n".join(notes) if notes else "")
        + "\n",
    )


def _alike(per_number: Mapping[str, _Said]) -> dict[_Said, list[str]]:
    """The numbers grouped by what is said of them, in the order they first come."""
    groups: dict[_Said, list[str]] = {}
    for number, said in per_number.items():
        groups.setdefault(said, []).append(number)
    return groups


def notice(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    subject: str,
    content: str,
    in_reply_to: str | None = None,
) -> bytes:
    """A plain notice: limit reached (R-2.4), the info@ answer (R-2.3), and others without a form;
    `in_reply_to` is the Message-ID of the mail it is about, if any."""
    msg = EmailMessage(policy=h.POLICY)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    return plain(msg, content)


def premium_verification(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    confirm_address: str,
    password: str,
    account: str,
    numbers: list[str],
    expires_at: datetime,
    lang: Language = "en",
) -> bytes:
    """R-4.3: ask the service's address to confirm before any premium SMS is mailed to it."""
    msg = EmailMessage(policy=h.POLICY)
    subject = w.PREMIUM_CONFIRM_SUBJECT(lang, password=password)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, auto="auto-generated")
    msg["Reply-To"] = h.address(confirm_address)
    return plain(
        msg,
        w.PREMIUM_CONFIRM_TEXT(
            lang,
            password=h.text(password, 10),
            numbers=", ".join(numbers),
            account=h.text(account, 80),
            address=h.address(confirm_address),
            expires=f"{expires_at:%Y-%m-%d %H:%M %Z}",
        ),
    )


def premium_answer_cut(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    phone: str,
    sent: str,
    dropped: str,
    in_reply_to: str | None,
    lang: Language = "en",
) -> bytes:
    """R-4.5: the free answer holds one SMS; tell the answering address what the phone got."""
    msg = EmailMessage(policy=h.POLICY)
    subject = w.PREMIUM_CUT_SUBJECT(lang, phone=phone)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    preview = dropped if len(dropped) <= 400 else dropped[:400] + "…"
    return plain(msg, w.PREMIUM_CUT_TEXT(lang, phone=phone, sent=sent, preview=preview))


def billing_file(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    subject: str,
    summary: str,
    filename: str,
    content: bytes,
) -> bytes:
    """R-5.1: a monthly billing file as a `text/plain; charset=utf-8` attachment, a summary above it.

    The attachment is base64: its tabs and long lines reach the receiver byte for byte, so the
    checksum on its last line still matches.
    """
    msg = EmailMessage(policy=h.POLICY)
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=subject, domain=domain, auto="auto-generated")
    set_text(msg, summary)
    msg.add_attachment(
        h.body(content.decode("utf-8", "replace")),
        subtype="plain",
        charset="utf-8",
        cte="base64",
        disposition="attachment",
        filename=attachment_name(filename),
    )
    return msg.as_bytes()


# Characters no Windows file name may hold; `?` also keeps an encoded word from forming.
_NOT_IN_FILE_NAMES = frozenset('"\\/?*:<>|')
ATTACHMENT_STEM_MAX = 80


def attachment_name(filename: str) -> str:
    """A billing attachment's name: the account's own name in plain ASCII ("Spółdzielnia „Łódź”"
    → "Spoldzielnia Lodz"), its extension kept whatever the length.

    Plain ASCII because mail clients disagree on encoded file names (Outlook and RFC 2231), and the
    extension because without it Windows cannot tell what the file is (a name cut to 100
    characters lost its ".txt" and ended inside a `%XX` escape)."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or not ext.isalnum():
        stem, ext = filename, "txt"
    plain = unicodedata.normalize("NFKD", transliterate_text(stem))
    plain = "".join(c for c in plain if c.isascii() and c.isprintable() and c not in _NOT_IN_FILE_NAMES)
    plain = " ".join(plain.split())[:ATTACHMENT_STEM_MAX].strip(" .-") or "billing"
    return f"{plain}.{ext}"
