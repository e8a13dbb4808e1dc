"""Mail that hands on what the gateway received, with no I/O: a phone's SMS answer (R-3), a premium
SMS for its client (R-4) and a bounce for the fallback address (R-1.7).

Unlike the notices of `gateway.notify`, these carry someone else's words: the text, subject and
original come from a phone, an SMSC or a mail server, and go through `gateway.mailheaders` like
every value from outside.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import make_msgid

from gateway import mailheaders as h
from gateway import wording as w
from gateway.forwardcoding import as_file
from gateway.mailcards import cards
from gateway.notify import mail_date, stamp
from gateway.polish import note_words, reason_words
from gateway.smtp.addressing import reply_address
from gateway.smtp.subjects import OWN_SUFFIX, REPLY_PREFIX
from gateway.wording import Language

REPLY_ID_MARK = "sms-reply"  # in the Message-ID of every reply mail: <...sms-reply@domain>


# Exchange keeps a conversation's topic up to 255 characters; only the Subject is cut shorter.
TOPIC_MAX = 255
# Ids kept in a References chain: the thread's first and the latest (RFC 5322 3.6.4 lets a long one
# lose those in between; clients need the root and the parent to place a mail).
REFS_MAX = 10


def reply_topic(subject: str) -> str:
    """A subject without the reply prefixes stacked before it ("Re: Odp: Spotkanie" → "Spotkanie")."""
    while (m := REPLY_PREFIX.match(subject)) is not None:
        subject = subject[m.end() :]
    return subject.strip()


def reply_title(phone_display: str) -> str:
    """How a reply mail's subject names the phone: alone, or after the conversation's topic."""
    return f"SMS from {phone_display}"


def without_reply_title(subject: str) -> str:
    """A subject without the "(SMS from +48 …)" a reply mail put after its topic: on the phone it
    would only repeat the phone's own number, and eat the SMS's subject length."""
    return OWN_SUFFIX.sub("", subject)


def cut_topic(subject: str) -> str | None:
    """The topic one of our reply mails carries in `subject` (a user's Reply to it), without the
    "…" of its cut; None for any other subject."""
    bare = without_reply_title(subject)
    return None if bare == subject else reply_topic(bare).removesuffix("…").rstrip()


def thread_refs(ids: Sequence[str]) -> str | None:
    """A References value of `ids` (with or without their <>), oldest first, each once and valid, at
    most REFS_MAX (the first and the latest); None when none is left.

    An answer's References used to be the user's latest mail alone: after the user's reply, the next
    answer named only that reply, which sits in Sent, and clients threading by References
    (Thunderbird, Apple Mail) showed each exchange as a thread of its own."""
    valid = [ref for ref in (h.msgid(f"<{i.strip('<>')}>") for i in ids) if ref is not None]
    chain = list(dict.fromkeys(reversed(valid)))[::-1]  # a repeated id keeps its latest place
    if len(chain) > REFS_MAX:
        chain = chain[:1] + chain[-(REFS_MAX - 1) :]
    return " ".join(chain) or None


CONTACT_MAX = 60  # characters of the name a user's mail gave the phone, in an answer's From
# The "(+48 601 123 430)" our From put after the name: a Reply to an answer mail names the phone so.
_OUR_SUFFIX = re.compile(r"\s*\(\s*\+?[0-9][0-9 ]{2,}\)\s*$")
_NOT_IN_NAME = str.maketrans(dict.fromkeys('"\\<>()[]{}', " "))
_ONLY_NUMBER = re.compile(r"[+0-9 ./-]*")


def contact_name(value: str | None) -> str | None:
    """The name a user's mail gave a phone, as an answer's From shows it; None for none.

    Through `mailheaders` like any value from outside, without the characters that would end the
    quoted name or turn it around in a mail client (format and bidi characters: U+202E showed the
    number backwards), and at most CONTACT_MAX characters. A name that is only a number or an
    address (what mail programs show when they know no name) names nobody."""
    if not value:
        return None
    s = value[: CONTACT_MAX * 8]
    if not (s.isascii() and s.isprintable()):  # most names are: nothing for `body` to drop
        s = h.body(s)
    while ")" in s and (suffix := _OUR_SUFFIX.search(s)) is not None:
        s = s[: suffix.start()]
    s = s.translate(_NOT_IN_NAME)
    if not s.isascii():  # ASCII holds no format character; most names are ASCII
        s = "".join(" " if unicodedata.category(c) == "Cf" else c for c in s)
    s = h.text(s, limit=CONTACT_MAX)
    if not s or "@" in s or _ONLY_NUMBER.fullmatch(s):
        return None
    return s


def sms_reply(
    *,
    now: float | None = None,
    phone: str,
    phone_display: str,
    domain: str,
    rcpt: str,
    subject: str | None,
    text: str,
    quoted: str | None,
    quoted_at: datetime | None,
    in_reply_to: str | None,
    note: str | None = None,
    gateway_address: str = "",
    references: str | None = None,
    quoted_by: str | None = None,
    lang: Language = "en",
    contact: str | None = None,
) -> bytes:
    """R-3.1/R-3.5: a phone's SMS answer as mail from `"+48 601 123 456" <+48601123456@domain>`,
    or, when the user's mail called the phone so (`contact`), `"Pan Kowalski (+48 601 123 456)"`:
    the user's mail program has the phone as a contact under another address form, and named the
    answer by its bare number.

    `quoted_by`: who wrote the quoted SMS, when the mail goes to someone else (the fallback's copy
    of an answer whose user's mail was refused); else it is "you", the reader.

    The address keeps the E.164 "+": RCPT reads bare digits as a national number first, so under
    `default_region = "DE"` a Reply to `4915112345678@` went to +494915112345678, a stranger, and
    under PL one to the Faroese `298212345@` to the Polish landline +48298212345. "+…" has one reading.

    An SMS from a sender that is no phone number (fallback mail) comes from `gateway_address`
    instead, under its own subject: there is no phone to answer and no thread to join.

    Replying to it in any mail client addresses the phone again, and In-Reply-To/References put
    it in the thread of the email that produced the SMS. `Auto-Submitted: auto-generated` keeps
    the user's own auto-responder from answering it (which would become an SMS).
    """
    msg = EmailMessage(policy=h.POLICY)
    name = "".join(c for c in phone_display if c in "+0123456789 ").strip() or "SMS"
    digits = "".join(c for c in phone if c.isascii() and c.isdigit())
    labels = ("".join(c for c in label if c.isascii() and (c.isalnum() or c == "-")).strip("-")
              for label in h.text(domain, limit=200).split("."))  # fmt: skip
    host = ".".join(label for label in labels if label)
    sender = h.address(reply_address(f"+{digits}", host) if digits else gateway_address)
    known = contact_name(contact) if digits else None
    shown = f"{known} ({name})" if known else name
    msg["From"] = f'"{shown}" <{sender}>' if "@" in sender else sender
    msg["To"] = h.recipient(msg, rcpt)
    original = h.text(subject or "")
    topic = ""
    if not digits and original:
        title = original
    elif not original:
        title = reply_title(name)
    # The digits alone also find the number after a "+" and as an SMSC wrote it (the fallback's subject).
    elif any(re.search(rf"(?<!\d){re.escape(n)}(?!\d)", original) for n in (name, digits)):
        title = original  # names the phone already (the fallback's "SMS from … to …")
        # the user's Reply to one of our reply mails
        topic_of_answer = without_reply_title(h.text(subject or "", limit=TOPIC_MAX))
        if topic_of_answer != original:
            topic = reply_topic(topic_of_answer)  # else every later answer left Outlook's thread
    else:
        # the subject names the phone; Thread-Topic keeps the conversation's topic, by which
        # clients that group by topic (Outlook, Exchange) put it with the user's mail.
        suffix = f" ({reply_title(name)})"
        cut = h.text(subject or "", limit=h.SUBJECT_MAX - len(suffix) - 4)
        # Whole: Outlook compares it with the topic it stored for the user's mail, which is not cut.
        topic = reply_topic(h.text(subject or "", limit=TOPIC_MAX))
        prefixed = cut[:3].casefold() in ("re:", "aw:", "sv:") or cut[:4].casefold() == "odp:"
        title = f"{cut}{suffix}" if prefixed else f"Re: {cut}{suffix}"
    msg["Subject"] = title
    if topic:
        msg["Thread-Topic"] = topic
    msg["Date"] = mail_date(now)
    msg["Message-ID"] = make_msgid(idstring=REPLY_ID_MARK, domain=host or None)  # answers name it
    msg["Auto-Submitted"] = "auto-generated"
    ref = h.msgid(in_reply_to)
    if ref is not None:
        msg["In-Reply-To"] = ref
        msg["References"] = thread_refs([*(references or "").split(), ref]) or ref
    content = answer_body(text, lang) + "\n"
    if note:
        content += f"\n[{h.body(note_words(note, lang))}]\n"
    if quoted is not None:
        header = _quote_header(name, quoted_at, quoted_by, lang)
        content += f"\n{header}\n" + "".join(f"> {line}\n" for line in h.body(quoted).split("\n"))
    msg.set_content(content, charset="utf-8", cte="quoted-printable")  # 7-bit safe on any relay
    for kind, name, card in cards(text):
        msg.add_attachment(card, subtype=kind, filename=name, cte="quoted-printable")
    return msg.as_bytes()


def _quote_header(name: str, at: datetime | None, by: str | None, lang: Language) -> str:
    """The line above the quoted SMS: who wrote it to the phone, and when. The user's Reply quotes
    it, and `gateway.smtp.textclean` cuts it there, in either language."""
    when = f"{at:%Y-%m-%d %H:%M}" if at else None
    if not by:
        return w.QUOTE_DATED_YOU(lang, at=when, name=name) if when else w.QUOTE_YOU(lang, name=name)
    who = h.text(by, limit=200)
    if when:
        return w.QUOTE_DATED_BY(lang, at=when, who=who, name=name)
    said = w.QUOTE_BY(lang, who=who, name=name)
    return said[:1].upper() + said[1:]


def answer_body(text: str, lang: Language = "en") -> str:
    """What a reply mail shows of an SMS's text; never nothing, which read as a mail that lost it.
    A text of controls alone (a phone's mistake, data a DCS called text) is named, code by code."""
    shown = h.body(text)
    if shown.strip():
        return shown
    if not text:
        return w.SMS_EMPTY(lang)
    if not text.strip():
        return w.SMS_BLANK(lang)
    codes = " ".join(f"U+{ord(c):04X}" for c in text[:64] if not c.isspace())
    return w.SMS_UNSHOWABLE(lang, codes=codes + (" …" if len(text) > 64 else ""))


def premium_mo(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    answer_address: str | None,
    password: str,
    number: str,
    phone: str,
    text: str,
    received_at: datetime,
    note: str | None = None,
    transliterated: bool = False,
    lang: Language = "en",
) -> bytes:
    """R-4.4: a premium SMS for its client (or, with a `note`, for the operator's fallback address).
    `transliterated`: the client's account sends its answers with Polish letters made plain (160
    characters hold them, not 70).

    Reply-To is the MO's answer address, which carries its token; a mail with one has no
    Auto-Submitted header, because a client's auto-responder answering it is a supported way to
    send the free SMS (R-4.5; `answers_per_mo` keeps a loop from spending more). A mail without
    one (the fallback's copy) is `auto-generated`: an answer to it sends nothing, and the operator's
    vacation reply went to the gateway's own address.
    """
    msg = EmailMessage(policy=h.POLICY)
    msg["From"] = f"SMS gateway <{h.address(sender)}>"
    msg["To"] = h.recipient(msg, rcpt)
    msg["Subject"] = h.text(f"{password or '?'} · {number} · {phone}")
    msg["Date"] = mail_date(now)
    msg["Message-ID"] = make_msgid(domain=h.text(domain, limit=200).replace(" ", "") or None)
    if answer_address:
        msg["Reply-To"] = h.address(answer_address)
    else:
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834
    content = (h.body(text) if text.strip() else w.PREMIUM_NO_TEXT(lang)) + "\n"
    if note:
        content += f"\n[{h.body(note_words(note, lang))}]\n"
    sent = f"{received_at:%Y-%m-%d %H:%M}"
    footer = w.PREMIUM_FOOTER(lang, number=h.text(number, 20), phone=h.text(phone, 40), sent=sent)
    content += f"\n-- \n{footer}\n"
    if answer_address:
        # What the answer's text makes of it: an emoji is UCS-2 whatever the account's transliteration.
        fits = (w.PREMIUM_FITS_PLAIN if transliterated else w.PREMIUM_FITS)(lang)
        content += w.PREMIUM_REPLY(lang, fits=fits) + "\n"
    msg.set_content(content, charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


BOUNCE_ATTACH_MAX = 256 * 1024
BOUNCE_HEADERS_MAX = 64 * 1024


# In every bounce forward. A forward that comes back to the relay (an alias of the fallback address
# that includes a phone, a relay pointed at the gateway), or a bounce of one, carries it somewhere
# in its bytes and is never forwarded again: without it, each round attached the last, for ever.
FORWARD_MARK = "X-Smsgw-Bounce-Forward"

# RFC 5322 2.1.1 (and the 8bit of RFC 2045 2.8): no line above 998 octets, no NUL.
_NOT_8BIT = re.compile(rb"[^\n]{999}|\x00")


def bounce_forward(
    *,
    now: float | None = None,
    sender: str,
    rcpt: str,
    domain: str,
    subject: str,
    reason: str,
    mail_from: str,
    client_ip: str | None,
    numbers: list[str],
    raw: bytes,
    what: str = "bounce",
    lang: Language = "en",
    answer: Callable[[str, Language], str] | None = None,
) -> bytes:
    """R-1.7: a bounce that reached the relay port, handed to the fallback address with the original.
    `what` = "mail to postmaster": such a mail, handed to the admin address the same way.

    The original goes in unchanged (message/rfc822) up to `BOUNCE_ATTACH_MAX`, else its headers
    (text/rfc822-headers). Its bytes never pass through the email package, which cannot write
    back every mail it reads (8-bit text, broken MIME); they replace a placeholder in the built
    mail, under a boundary they do not contain. A line over 998 octets (or a NUL) cannot travel
    as 7bit/8bit, and relays refuse it for good; message/rfc822 may not be base64 (RFC 2046
    5.2.1), so such an original goes base64 as a file, bounce.eml, which mail clients open as a
    mail. So does one with UTF-8 in its headers, which message/rfc822 may not hold (RFC 6532 3.7)
    and no relay without SMTPUTF8 may carry. An 8-bit body goes in as 8bit, and as a file to a
    relay without 8BITMIME (`gateway.forwardcoding`, which says why a file). Everything else of
    the mail is 7-bit. The caller sends it with an empty envelope sender. `numbers` are the
    recipients as shown. `answer`: the first words of a bounce of an answer mail (`gateway.answerbounce`).
    """
    original = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").lstrip(b"\n")
    whole = len(original) <= BOUNCE_ATTACH_MAX
    if whole:
        attached, kind, name = original, "message/rfc822", "bounce.eml"
        said = w.FORWARD_WHOLE(lang)
    else:
        attached, kind, name = _header_block(original), "text/rfc822-headers", "bounce-headers.txt"
        said = w.FORWARD_HEADERS_ONLY(lang, size=len(original), kib=BOUNCE_ATTACH_MAX // 1024)
    too_long = _NOT_8BIT.search(attached) is not None
    encoded = too_long or not attached.partition(b"\n\n")[0].isascii()  # UTF-8 headers
    if too_long:
        said += w.FORWARD_AS_FILE(lang)
    if encoded:
        if whole:
            kind = "application/octet-stream"
        attached = as_file(attached)
    named = w.FORWARD_WHAT[what](lang) if what in w.FORWARD_WHAT else what
    envelope = h.text(mail_from, limit=320) if mail_from else w.FORWARD_EMPTY_SENDER(lang)
    lines = [
        answer(said, lang) if answer is not None else w.FORWARD_INTRO(lang, what=named, said=said),
        "",
        w.FORWARD_WHY(lang, what=named, reason=h.text(reason_words(reason, lang), limit=300)),
        w.FORWARD_ENVELOPE(lang, sender=envelope),
        w.FORWARD_SENT_BY(lang, ip=h.text(client_ip, limit=64) if client_ip else w.FORWARD_UNKNOWN(lang)),
        w.FORWARD_TO(lang, numbers=", ".join(h.text(n, limit=64) for n in numbers) or "-"),
        w.FORWARD_ORIGINAL_SUBJECT(lang, subject=h.text(subject) or w.FORWARD_NONE(lang)),
    ]
    msg = EmailMessage(policy=h.POLICY)
    title = w.FORWARD_SUBJECT(
        lang, What=named[:1].upper() + named[1:], what=named, subject=subject or w.NO_SUBJECT(lang)
    )
    stamp(msg, now=now, sender=sender, rcpt=rcpt, subject=title, domain=domain)
    msg[FORWARD_MARK] = "bounce" if what == "delay warning" else what.split()[-1]  # "bounce", "postmaster"
    msg.set_content(h.body("\n".join(lines) + "\n"), cte="quoted-printable")  # 7-bit in any language
    msg.make_mixed()
    placeholder = f"smsgw-original-{secrets.token_hex(16)}"
    part = Message()
    part["Content-Type"] = kind
    part["Content-Disposition"] = f'attachment; filename="{name}"'
    part["Content-Transfer-Encoding"] = "base64" if encoded else "7bit" if attached.isascii() else "8bit"
    part.set_payload(placeholder)
    msg.attach(part)
    boundary = f"=_smsgw_{secrets.token_hex(16)}"
    while f"--{boundary}".encode() in attached:  # cannot happen by chance; a sender cannot guess it
        boundary = f"=_smsgw_{secrets.token_hex(16)}"
    msg.set_boundary(boundary)
    return msg.as_bytes().replace(placeholder.encode(), attached, 1)


def _header_block(original: bytes) -> bytes:
    """The header lines of a mail (LF line ends), at most `BOUNCE_HEADERS_MAX` bytes of whole lines."""
    end = original.find(b"\n\n")
    head = original if end < 0 else original[: end + 1]
    if len(head) > BOUNCE_HEADERS_MAX:
        head = head[: head.rfind(b"\n", 0, BOUNCE_HEADERS_MAX) + 1] or head[:BOUNCE_HEADERS_MAX]
    return head
