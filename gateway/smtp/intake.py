"""Email bytes → the text of the SMS (R-1.3, R-1.6, R-1.7): MIME structure (text/plain first, then HTML,
then an Outlook TNEF winmail.dat body, then an enclosed message), machine-mail classification
(gateway.smtp.automail), transfer encodings, charsets, encoded-word subjects and format=flowed
(gateway.smtp.charsets) and the cutting rules (gateway.smtp.textclean); a meeting invitation's time and
place (gateway.smtp.invitation.invite). This module owns the rule that network
bytes never raise anything but IntakeRefused. It parses with the compat32 policy because
policy.default costs about seven times as much per mail on the SMTP hot path, and decodes headers
itself. HTML and Outlook TNEF bodies are turned into text by gateway.smtp.htmlbody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import pydantic
import structlog

from gateway import mailheaders
from gateway.smtp import automail, displaynames, mimefast, replies
from gateway.smtp.charsets import decode_header, normalize
from gateway.smtp.htmlbody import read_tnef
from gateway.smtp.invitation import Invite, answers_invitation, invite
from gateway.smtp.meetingtext import above_invite_header, outlook_cancellation
from gateway.smtp.mimebody import BodyContext, BodyText, octet_body
from gateway.smtp.mimebody import body as _body  # the name a test breaks the walk at
from gateway.smtp.subjects import sms_subject, without_outside_tag
from gateway.smtp.textclean import clean_body, only_signature
from gateway.smtp.textlinks import unwrap_in_text
from smsc.graphemes import cluster_start, visible

log = structlog.get_logger(__name__)

EMPTY_REPLY = replies.EMPTY_TEXT
ONLY_QUOTE_REPLY = replies.ONLY_QUOTE
ONLY_BELOW_END_REPLY = replies.ONLY_BELOW_END
# Named: unlike the end marker, which the sender typed, the clause was added by their mail server,
# and they must learn which of the account's phrases took their text. Its Polish letters become
# plain ones (`gateway.mailheaders.reply_line`): a reply line is ASCII.
ONLY_BELOW_CUT_REPLY = (
    "554 5.6.0 Message has no text to send (no subject; the body began with {phrase}, which the"
    " account cuts the text from: write the message above it)"
)
# What `removed` says of the text beside a calendar answer or cancellation, which is not sent.
CALENDAR_ANSWER = "text of a meeting answer or cancellation not sent"
_PHRASE_SHOWN = 40  # the start of a long phrase names it; the reply line is bounded
ONLY_ATTACHMENTS_REPLY = replies.ONLY_ATTACHMENTS
ENCRYPTED_REPLY = replies.ENCRYPTED
RIGHTS_PROTECTED_REPLY = replies.RIGHTS_PROTECTED
SIGNED_OPAQUE_REPLY = replies.SIGNED_OPAQUE
UNREADABLE_REPLY = replies.UNREADABLE

_MAX_BODY = 100_000  # characters handed to cutting; ten SMS hold about 1,600
# A signature with its disclaimer in two languages holds about 1,500 characters; a longer body is
# text, and is not measured again (as long as cleaning itself on a 100,000-character body).
_SIGNATURE_MAX = 5_000


@dataclass(frozen=True, slots=True)
class IntakeOptions:
    subject_max: int = 30
    separator: str = ": "
    end_marker: str | None = "END"
    cut_from: tuple[str, ...] = ()  # the account's phrases: the body ends above a line starting with one
    charset_fallbacks: tuple[str, ...] = ("utf-8", "windows-1250", "iso-8859-2")
    own_address: str | None = None  # the gateway's From: its notices sent back are machine mail
    zone: str = "Europe/Warsaw"  # [gateway] timezone: an invitation's start is written in it


@lru_cache(maxsize=64)
def intake_options(
    subject_max: int,
    separator: str,
    end_marker: str | None,
    cut_from: tuple[str, ...],
    charset_fallbacks: tuple[str, ...],
    own_address: str | None,
    zone: str,
) -> IntakeOptions:
    """The IntakeOptions of these values (its fields, in their order), made once for each set of them:
    a relay mail's depend on the config and the account alone, and made for each mail (seven fields,
    each set through `object.__setattr__`) they cost the intake worker 19 k instructions a mail."""
    return IntakeOptions(subject_max, separator, end_marker, cut_from, charset_fallbacks, own_address, zone)


class MailText(pydantic.BaseModel):
    """What the gateway takes from one email; `text` is what goes to the phone."""

    model_config = pydantic.ConfigDict(frozen=True)

    message_id: str | None
    subject: str
    body: str
    text: str
    automatic: str | None
    bulk: bool
    removed: list[str]
    in_reply_to: str | None
    thread: tuple[str, ...] = ()  # the ids in In-Reply-To and References: which mails this answers
    references: tuple[str, ...] = ()  # References alone, oldest first: the thread its answers continue
    # (local part casefolded, display name) of the To and Cc addresses that have one: what the
    # sender's mail program calls each phone (`"Pan Kowalski" <601123430@…>`), for its answers' From
    named: tuple[tuple[str, str], ...] = ()
    # Outlook's "Expires after" (`Expiry-Date:`, RFC 4021): after it the SMS is no use, and a mail that
    # comes after it is refused. `Expires:` is written with other meanings too (PHP's nocache 1981, an
    # article's expiry in netnews): it may only shorten the validity, a past one is ignored.
    expiry_date: datetime | None = None
    expires: datetime | None = None


_new, _setattr = object.__new__, object.__setattr__


def _mail_text(**fields: Any) -> MailText:
    """`MailText(**fields)` (every field, in order) without validating values made here to their
    types: 1 % of the intake worker. tests/test_intake_refusals.py holds it to the validated one."""
    mail = _new(MailText)
    _setattr(mail, "__dict__", fields)
    _setattr(mail, "__pydantic_fields_set__", set(fields))
    _setattr(mail, "__pydantic_extra__", None)
    _setattr(mail, "__pydantic_private__", None)
    return mail


class IntakeRefused(Exception):
    """The email cannot become an SMS; `reply` is the complete SMTP reply for the sender."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def read_mail(raw: bytes, opts: IntakeOptions = IntakeOptions(), *, empty_sender: bool = False) -> MailText:
    """Turn the DATA of one email (any line ends, 8-bit allowed) into the SMS text.

    Raises IntakeRefused for a human mail with nothing to send and for anything unreadable; machine
    mail (R-1.7) is returned with `automatic` set and never refused for being empty.
    """
    try:
        return _read(raw, opts, empty_sender)
    except IntakeRefused:
        raise
    except RecursionError:  # hostile nesting (past mimebody's bound or the parser's stack): not a bug
        log.info("intake.too_deep", size=len(raw))
        raise IntakeRefused(UNREADABLE_REPLY.format("MIME nesting too deep")) from None
    except Exception as exc:  # a bug in intake: the sender gets a refusal, the operator a traceback
        log.exception("intake.unreadable", error=type(exc).__name__, size=len(raw))
        raise IntakeRefused(UNREADABLE_REPLY.format("malformed MIME structure")) from None


def _body_charset(msg: Message) -> str | None:
    """The charset the mail's first text part declares (what raw 8-bit headers were written in)."""
    for part in msg.walk():
        if part.get_content_maintype() == "text" and (charset := part.get_content_charset()):
            return charset
    return None


def _read(raw: bytes, opts: IntakeOptions, empty_sender: bool) -> MailText:
    msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
    heads = automail.first_headers(msg)
    fallbacks = opts.charset_fallbacks or ("utf-8",)
    subject = heads.get("subject", "")
    subject = decode_header(subject, fallbacks, None if subject.isascii() else _body_charset(msg))
    ctx = BodyContext(fallbacks)
    found = _body(msg, ctx, 0)
    tnef = read_tnef(ctx.tnef[0], ctx.fallbacks, ctx.notes, want_body=found is None) if ctx.tnef else None
    if found is None and tnef is not None and tnef.text.strip():
        found = BodyText(tnef.text, tnef.kind)
        ctx.notes += ["Outlook TNEF body used", *(["RTF converted"] if tnef.kind == "rtf" else [])]
    if found is None and ctx.enclosed:
        ctx.fresh_budget()
        found = _body(ctx.enclosed[0], ctx, 1)
        if found is not None and found.text.strip():
            ctx.notes.append("text of the attached message used")
    if found is None and not msg.is_multipart():
        found = octet_body(msg, ctx)
    if not subject and tnef is not None and tnef.subject:
        subject = tnef.subject
    if found is not None and found.kind == "html" and found.text.strip():
        ctx.notes.append("HTML converted")
    body_text = normalize(found.text[:_MAX_BODY]) if found else ""
    automatic = automail.machine_reason(
        msg,
        subject,
        body=body_text,
        tnef_class=tnef.msg_class if tnef else None,
        empty_sender=empty_sender,
        own_address=opts.own_address,
        headers=heads,  # its `first_headers`
    )
    meeting = invite(ctx.calendars[0], ctx.fallbacks, opts.zone) if ctx.calendars else None
    cancelled = outlook_cancellation(ctx.calendars[0], ctx.fallbacks, opts.zone) if ctx.calendars else None
    scheduled = meeting is not None or cancelled is not None  # the calendar part says when
    if cancelled is not None and visible(note := above_invite_header(body_text)):
        body_text = note  # the old invitation below Outlook's header of it is not sent
    elif cancelled is not None:
        cancelled = None  # no note above the header: as an answer, the subject alone
    sender = heads.get("from", "")  # whose company signature may end the text; plain ASCII read as it is
    if not sender.isascii() or "=?" in sender or "\n" in sender:
        sender = decode_header(sender, fallbacks)
    topic = sms_subject(subject)  # without reply/forward prefixes and our "(SMS from …)"
    # A new mail's `>` lines are its own text, and so is a memo's header-like block under a line of
    # dashes; a reply's, a forward's or an auto-reply's quote another (textclean); an auto-responder
    # often names no mail it answers.
    quoting = (
        automatic is not None or empty_sender or bool(heads.get("in-reply-to") or heads.get("references"))
    )
    # A reply or forward prefix, or our answer mail's title, says another mail is quoted; an outside-mail
    # tag alone does not: a new mail from outside keeps its own `>` lines.
    quoting = quoting or topic != without_outside_tag(subject).strip()
    cleaned = clean_body(
        body_text, opts.end_marker, opts.cut_from, invitation=scheduled, sender=sender, quoting=quoting
    )
    removed = [*dict.fromkeys(ctx.notes), *cleaned.removed]
    if ctx.attachments:
        removed.append(f"attachments not sent ({ctx.attachments})")
    shown_topic = topic if opts.subject_max > 0 else ""
    kept = unwrap_in_text(cleaned.text)  # a link filter's wrapper as the address it carries
    said: list[str] = []
    if (
        shown_topic
        and len(kept) <= _SIGNATURE_MAX
        and only_signature(kept, sender=sender, subject=topic, removed=said, under_subject=True)
    ):
        # Outlook's automatic signature under a subject-only alert ("Serwer padł…"): the subject is
        # what was written; a body with no subject above it may be the message, and stays. The writer
        # is told what went: the signature, the company's notice.
        kept = ""
        removed += [label for label in said if label not in removed]
    if meeting is not None:
        kept = _with_invite(kept, meeting, shown_topic)
    elif cancelled is not None and kept:
        # The organiser's note, and which day was cancelled: a time in the note is often the new one,
        # so the cancelled start stands right after the subject that says it was cancelled ("Odwołane:
        # Przegląd: 2026-12-08 10:00\nPrzenosimy na czwartek 10:00."), not below the note, where it read
        # as the new time. Without the subject nothing would say what it is: it is left out.
        said = not shown_topic or cancelled.start[:10] in kept
        kept = kept if said else f"{cancelled.start}\n{kept}"
    elif kept and shown_topic and ctx.calendars and answers_invitation(ctx.calendars[0], ctx.fallbacks):
        # An answer or a cancellation sends its subject alone; without a subject its text stays.
        kept = ""
        removed.append(CALENDAR_ANSWER)
    # The cut leaves room for the body. With no body the subject IS the message (a UPS, a NAS or
    # Zabbix alert): it goes whole, split and capped as any text. subject_max 0 still leaves it out.
    whole = not kept and opts.subject_max > 0
    short = topic if whole else _cut_subject(topic, opts.subject_max)
    # Only a subject that lost more than its trailing punctuation was cut: "Uwaga:" loses its colon
    # before the separator (": "), and so does a 31-character "x" * 30 + ":", which keeps every letter;
    # the sender was told either had been cut to 30 characters. A number opening the subject goes
    # whole past the limit (`_cut_subject`): the note says the length sent, not a limit it passed.
    if short and not whole and short != topic.rstrip(" ,;:-–("):
        removed.append(f"subject cut to {_cut_length(topic, short, opts.subject_max)} characters")
    text = opts.separator.join(p for p in (short, kept) if p)
    encrypted = (ctx.encrypted and not kept) or "-----BEGIN PGP MESSAGE-----" in body_text
    rights = ctx.rights_protected or heads.get("content-class", "").strip().lower() == "rpmsg.message"
    if automatic is None and rights:
        raise IntakeRefused(RIGHTS_PROTECTED_REPLY)  # its text says only that a protected mail was sent
    if automatic is None and encrypted:
        raise IntakeRefused(ENCRYPTED_REPLY)  # sending only the subject would hide that the body was lost
    if automatic is None and ctx.opaque_signed and not kept:
        raise IntakeRefused(SIGNED_OPAQUE_REPLY)
    if not text and automatic is None:
        if visible(body_text):
            if cleaned.all_below_cut is not None and not cleaned.all_below_end:
                raise IntakeRefused(ONLY_BELOW_CUT_REPLY.format(phrase=_shown_phrase(cleaned.all_below_cut)))
            raise IntakeRefused(ONLY_BELOW_END_REPLY if cleaned.all_below_end else ONLY_QUOTE_REPLY)
        if ctx.html_skipped:  # its text may be in a part not read: not "no text", nor "only attachments"
            raise IntakeRefused(replies.HTML_NOT_READ)
        raise IntakeRefused(ONLY_ATTACHMENTS_REPLY if ctx.attachments or ctx.tnef else EMPTY_REPLY)
    return _mail_text(
        message_id=_msgid(heads.get("message-id")),
        subject=subject,
        body=kept,
        text=text,
        automatic=automatic,
        bulk=automail.is_bulk(msg, heads),
        removed=removed,
        in_reply_to=_msgid(heads.get("in-reply-to")),
        # References first: its first id is the thread's root, kept by the cut (read for membership only).
        thread=_thread(heads.get("references", ""), heads.get("in-reply-to", "")),
        references=_thread(heads.get("references", "")),
        named=displaynames.named(heads.get("to", ""), heads.get("cc", ""), fallbacks),
        expiry_date=_expires(heads, "expiry-date"),
        expires=_expires(heads, "expires"),
    )


def _with_invite(kept: str, meeting: Invite, topic: str) -> str:
    """The text with an invitation's time and place: alone, its title (unless the subject says it)
    over "2026-12-07 10:00, Sala 204"; below a body, a line with what the body does not say yet
    (the clock time, or the day of an all-day event, and the place, as written in the invitation)."""
    if not kept:
        title = meeting.summary if meeting.summary.casefold() not in topic.casefold() else ""
        return "\n".join(p for p in (title, meeting.line()) if p)
    folded = kept.casefold()
    start = meeting.start
    said = start[-5:] if len(start) > 10 else start  # "10:00"; an all-day event's "2026-12-07"
    missing = [
        p
        for p, shown in ((start, said), (meeting.location, meeting.location))
        if p and shown.casefold() not in folded
    ]
    return f"{kept}\n{', '.join(missing)}" if missing else kept


def _shown_phrase(phrase: str) -> str:
    shown = phrase if len(phrase) <= _PHRASE_SHOWN else phrase[: _PHRASE_SHOWN - 3].rstrip() + "..."
    return f'"{mailheaders.reply_line(shown)}"'


# A number written in groups: "601 234 567", "+48 22 123 45 67", "1 230,50", "1.230,50".
_DIGIT_GROUP = re.compile(r"\+?\d++(?:[ .,]\d++)*+")
# The longest number a reader dials or pays: an IBAN, 34 characters, in groups of four.
_NUMBER_MAX = 42


def _cut_subject(subject: str, limit: int) -> str:
    """At most `limit` characters, ending at a word boundary when that keeps at least half of them,
    and never inside a grapheme cluster: half a flag or an emoji without its skin tone shows on the
    phone as a boxed letter (a single cluster longer than `limit` is cut where it must be). Nor inside
    a number written in groups: its spaces are no word boundaries, and "pod 601 234 567" went out as
    "pod 601 234", "fakturę 12: 1 230,50 zł" as "fakturę 12: 1", another number the phone dials or pays;
    such a number goes whole or not at all. One that opens the subject goes whole past the limit, up
    to `_NUMBER_MAX` ("601 234 567 pilne…" at 8 went out as "601 234"); a longer run of digit groups is
    no number anyone dials and is cut where it must be, as a cluster longer than `limit` is."""
    if limit <= 0:
        return ""
    end = (cluster_start(subject, limit) or limit) if len(subject) > limit else limit
    cut = subject[:end]
    if len(subject) > end and not subject[end].isspace() and cut.rfind(" ") >= limit // 2:
        cut = cut[: cut.rfind(" ")]
    if len(subject) > len(cut) and (number := _number_cut(subject, len(cut))) is not None:
        if cut[: number.start()].rstrip(" ,;:-–("):
            cut = cut[: number.start()]
        elif len(number.group()) <= _NUMBER_MAX:
            cut = number.group()  # without a bracket or dash before it, whose close the cut leaves out
    return cut.rstrip(" ,;:-–(")


def _cut_length(subject: str, short: str, limit: int) -> int:
    """The length a cut subject's note names: the limit, or the length sent when that is longer (a
    number opening it goes whole) or when the cut left out a number that did not fit ("Przelew na 61
    1090 1014 … dziś" went out as "Przelew na", 10 characters, and the note said 30)."""
    rest = subject[len(short) :].lstrip(" ,;:-–(")
    return len(short) if len(short) > limit or rest[:1].isdigit() or rest.startswith("+") else limit


def _number_cut(subject: str, end: int) -> re.Match[str] | None:
    """The number in groups that a cut at `end` falls inside, or None. Looked for from shortly before
    the cut: a subject may be long, a number in it is not."""
    for match in _DIGIT_GROUP.finditer(subject, max(0, end - 100)):
        if match.start() >= end:
            return None
        if match.end() > end:
            return match
    return None


_THREAD_ID = re.compile(r"<([^<>\s]{1,250})>")


def _thread(*values: str) -> tuple[str, ...]:
    """The bracketed ids of threading headers, each once; at most 50 (enough to know a thread): the
    first and the newest 49. The first 50 of a long thread's References lost the newest ids, the mail
    replied to among them, and the answers' References jumped from the thread's middle to the user's."""
    ids: list[str] = []
    for value in values:
        text = str(value)
        if "<" in text:  # most mails start a thread: no id to look for
            ids += _THREAD_ID.findall(text)
    return tuple((kept := list(dict.fromkeys(ids)))[:1] + kept[1:][-49:]) if ids else ()


def _expires(heads: dict[str, str], name: str) -> datetime | None:
    """The date of the mail's `name` header (`Expiry-Date` or `Expires`): a reminder of a meeting at
    17:00 sent with Outlook's "Expires after" is of no use to a phone that was off until the evening.
    A date without a zone (or -0000) is read as UTC; one that is no date is no reason to refuse the mail."""
    if (value := heads.get(name)) is None:
        return None
    try:
        when = parsedate_to_datetime(" ".join(value.split()))
        # A year written "0001" is read as 2001 (the rule for two-digit years): kept as written.
        if (year := re.search(r"\d\s+[A-Za-z]{3}\S*\s+(\d{3,4})\b", value)) and int(year[1]) < 100:
            when = when.replace(year=int(year[1]))  # year 0000, no date: ValueError
    except (ValueError, TypeError, OverflowError, IndexError):
        log.debug("intake.expiry_unreadable", header=name, value=value[:80])
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _msgid(value: str | None) -> str | None:
    """The id for threading and duplicate detection; one that cannot be written back is dropped (the
    duplicate key then reads the field as written, `mailidentity.unwritable_id`)."""
    return mailheaders.msgid_token(value)
