"""Email bytes → the text of the SMS (R-1.3, R-1.6, R-1.7): MIME structure (text/plain first, then HTML,
then an Outlook TNEF winmail.dat body, then an enclosed message), machine-mail classification
(gateway.smtp.automail), transfer encodings, charsets, encoded-word subjects and format=flowed
(gateway.smtp.charsets) and the cutting rules (gateway.smtp.textclean). This module owns the rule that network
bytes never raise anything but IntakeRefused. It parses with the compat32 policy because
policy.default costs about seven times as much per mail on the SMTP hot path, and decodes headers
itself. HTML and Outlook TNEF bodies are turned into text by gateway.smtp.htmlbody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from email.utils import parsedate_to_datetime

import pydantic
import structlog

from gateway import mailheaders
from gateway.smtp import automail, displaynames, mimefast, replies
from gateway.smtp.charsets import (
    content_charset,
    decode_header,
    decode_text,
    normalize,
    payload_bytes,
    unflow,
)
from gateway.smtp.htmlbody import html_to_text, looks_like_html, read_tnef
from gateway.smtp.subjects import sms_subject
from gateway.smtp.textclean import clean_body
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
_PHRASE_SHOWN = 40  # the start of a long phrase names it; the reply line is bounded
ONLY_ATTACHMENTS_REPLY = replies.ONLY_ATTACHMENTS
ENCRYPTED_REPLY = replies.ENCRYPTED
UNREADABLE_REPLY = replies.UNREADABLE

_MAX_DEPTH = 30  # MIME nesting; deeper is hostile, not a mail client
_MAX_BODY = 100_000  # characters handed to cutting; ten SMS hold about 1,600
_MAX_OCTET = 65_536
_STR_PARSER = Parser(policy=compat32)


@dataclass(frozen=True, slots=True)
class IntakeOptions:
    subject_max: int = 30
    separator: str = ": "
    end_marker: str | None = "END"
    cut_from: tuple[str, ...] = ()  # the account's phrases: the body ends above a line starting with one
    charset_fallbacks: tuple[str, ...] = ("utf-8", "windows-1250", "iso-8859-2")
    own_address: str | None = None  # the gateway's From: its notices sent back are machine mail


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
    except RecursionError:  # hostile nesting beyond the parser's stack: expected input, not a bug
        log.info("intake.too_deep", size=len(raw))
        raise IntakeRefused(UNREADABLE_REPLY.format("MIME nesting too deep")) from None
    except Exception as exc:  # a bug in intake: the sender gets a refusal, the operator a traceback
        log.exception("intake.unreadable", error=type(exc).__name__, size=len(raw))
        raise IntakeRefused(UNREADABLE_REPLY.format("malformed MIME structure")) from None


@dataclass(slots=True)
class _Text:
    text: str
    kind: str  # "plain" | "html"


@dataclass(slots=True)
class _Ctx:
    fallbacks: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    tnef: list[Message] = field(default_factory=list)
    enclosed: list[Message] = field(default_factory=list)
    attachments: int = 0
    encrypted: bool = False


def _body_charset(msg: Message) -> str | None:
    """The charset the mail's first text part declares (what raw 8-bit headers were written in)."""
    for part in msg.walk():
        if part.get_content_maintype() == "text" and (charset := part.get_content_charset()):
            return charset
    return None


def _read(raw: bytes, opts: IntakeOptions, empty_sender: bool) -> MailText:
    msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
    heads: dict[str, str] = {}
    for name, value in msg.raw_items():
        heads.setdefault(name.lower(), value)
    fallbacks = opts.charset_fallbacks or ("utf-8",)
    subject = heads.get("subject", "")
    subject = decode_header(subject, fallbacks, None if subject.isascii() else _body_charset(msg))
    ctx = _Ctx(fallbacks)
    found = _body(msg, ctx, 0)
    tnef = read_tnef(ctx.tnef[0], ctx.fallbacks, ctx.notes, want_body=found is None) if ctx.tnef else None
    if found is None and tnef is not None and tnef.text.strip():
        found = _Text(tnef.text, tnef.kind)
        ctx.notes += ["Outlook TNEF body used", *(["RTF converted"] if tnef.kind == "rtf" else [])]
    if found is None and ctx.enclosed:
        found = _body(ctx.enclosed[0], ctx, 1)
        if found is not None:
            ctx.notes.append("text of the attached message used")
    if found is None and not msg.is_multipart():
        found = _octet_body(msg, ctx)
    if not subject and tnef is not None and tnef.subject:
        subject = tnef.subject
    if found is not None and found.kind == "html":
        ctx.notes.append("HTML converted")
    body_text = normalize(found.text[:_MAX_BODY]) if found else ""
    automatic = automail.machine_reason(
        msg,
        subject,
        body=body_text,
        tnef_class=tnef.msg_class if tnef else None,
        empty_sender=empty_sender,
        own_address=opts.own_address,
    )
    cleaned = clean_body(body_text, opts.end_marker, opts.cut_from)
    removed = [*dict.fromkeys(ctx.notes), *cleaned.removed]
    if ctx.attachments:
        removed.append(f"attachments not sent ({ctx.attachments})")
    topic = sms_subject(subject)  # without reply/forward prefixes and our "(SMS from …)"
    # The cut leaves room for the body. With no body the subject IS the message (a UPS, a NAS or
    # Zabbix alert): it goes whole, split and capped as any text. subject_max 0 still leaves it out.
    whole = not cleaned.text and opts.subject_max > 0
    short = topic if whole else _cut_subject(topic, opts.subject_max)
    if short != topic and short:
        removed.append(f"subject cut to {opts.subject_max} characters")
    text = opts.separator.join(p for p in (short, cleaned.text) if p)
    encrypted = (ctx.encrypted and not cleaned.text) or "-----BEGIN PGP MESSAGE-----" in body_text
    if automatic is None and encrypted:
        raise IntakeRefused(ENCRYPTED_REPLY)  # sending only the subject would hide that the body was lost
    if not text and automatic is None:
        if visible(body_text):
            if cleaned.all_below_cut is not None and not cleaned.all_below_end:
                raise IntakeRefused(ONLY_BELOW_CUT_REPLY.format(phrase=_shown_phrase(cleaned.all_below_cut)))
            raise IntakeRefused(ONLY_BELOW_END_REPLY if cleaned.all_below_end else ONLY_QUOTE_REPLY)
        raise IntakeRefused(ONLY_ATTACHMENTS_REPLY if ctx.attachments or ctx.tnef else EMPTY_REPLY)
    return MailText(
        message_id=_msgid(heads.get("message-id")),
        subject=subject,
        body=cleaned.text,
        text=text,
        automatic=automatic,
        bulk=automail.is_bulk(msg),
        removed=removed,
        in_reply_to=_msgid(heads.get("in-reply-to")),
        thread=_thread(heads.get("in-reply-to", ""), heads.get("references", "")),
        references=_thread(heads.get("references", "")),
        named=displaynames.named(heads.get("to", ""), heads.get("cc", ""), fallbacks),
        expiry_date=_expires(heads, "expiry-date"),
        expires=_expires(heads, "expires"),
    )


def _shown_phrase(phrase: str) -> str:
    shown = phrase if len(phrase) <= _PHRASE_SHOWN else phrase[: _PHRASE_SHOWN - 3].rstrip() + "..."
    return f'"{mailheaders.reply_line(shown)}"'


def _cut_subject(subject: str, limit: int) -> str:
    """At most `limit` characters, ending at a word boundary when that keeps at least half of them,
    and never inside a grapheme cluster: half a flag or an emoji without its skin tone shows on the
    phone as a boxed letter (a single cluster longer than `limit` is cut where it must be)."""
    if limit <= 0:
        return ""
    end = (cluster_start(subject, limit) or limit) if len(subject) > limit else limit
    cut = subject[:end]
    if len(subject) > end and not subject[end].isspace() and cut.rfind(" ") >= limit // 2:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-–(")


_THREAD_ID = re.compile(r"<([^<>\s]{1,250})>")


def _thread(*values: str) -> tuple[str, ...]:
    """The bracketed ids of threading headers, each once; at most 50 (enough to know a thread)."""
    return tuple(dict.fromkeys(i for v in values for i in _THREAD_ID.findall(str(v))))[:50]


def _expires(heads: dict[str, str], name: str) -> datetime | None:
    """The date of the mail's `name` header (`Expiry-Date` or `Expires`): a reminder of a meeting at
    17:00 sent with Outlook's "Expires after" is of no use to a phone that was off until the evening.
    A date without a zone (or -0000) is read as UTC; one that is no date is no reason to refuse the mail."""
    if (value := heads.get(name)) is None:
        return None
    try:
        when = parsedate_to_datetime(" ".join(value.split()))
    except (ValueError, TypeError, OverflowError, IndexError):
        log.debug("intake.expiry_unreadable", header=name, value=value[:80])
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _msgid(value: str | None) -> str | None:
    """The id for duplicate detection and threading; one that cannot be written back is dropped."""
    return mailheaders.msgid_token(value)


# --- MIME structure ---------------------------------------------------------------------------------


def _body(part: Message, ctx: _Ctx, depth: int) -> _Text | None:
    """The text a person reading `part` in a mail program would take as the message."""
    if depth > _MAX_DEPTH:
        return None
    ctype = part.get_content_type()
    main, _, sub = ctype.partition("/")
    if part.is_multipart():
        parts = [p for p in part.get_payload() if isinstance(p, Message)]
        if main == "message":
            if ctype != "message/rfc822" or not parts:
                return None
            if depth == 0:  # GroupWise: the whole mail is the enclosure
                return _body(parts[0], ctx, depth + 1)
            ctx.enclosed.append(parts[0])
            return None
        if sub == "alternative":
            return _alternative(parts, ctx, depth)
        if sub == "encrypted":
            ctx.encrypted = True
            return None
        if sub in ("signed", "report"):  # the signed content / the human-readable part
            return _body(parts[0], ctx, depth + 1) if parts else None
        if sub == "related":
            return _body(_related_root(part, parts), ctx, depth + 1) if parts else None
        return _mixed(parts, ctx, depth)
    if main == "multipart":
        return _salvage(part, ctx, depth)
    if ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or _filename(part) == "winmail.dat":
        ctx.tnef.append(part)
        return None
    if (
        ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime")
        or ctype == "application/pgp-encrypted"
    ):
        ctx.encrypted = True
        return None
    if _is_attachment(part):
        ctx.attachments += 1
        return None
    if ctype in ("text/plain", "text/html", "application/plain"):
        return _leaf_text(part, ctx, allow_html=True)
    if main not in ("message", "text") and not ctype.endswith("pkcs7-signature"):
        ctx.attachments += 1  # an inline image or other non-text part: not sent
    return None


def _alternative(parts: list[Message], ctx: _Ctx, depth: int) -> _Text | None:
    """text/plain wins (R-1.3); otherwise the first alternative that yields any text."""
    for p in parts:
        if p.get_content_type() == "text/plain" and not _is_attachment(p):
            found = _leaf_text(p, ctx, allow_html=False)
            if found is not None and found.text.strip():
                return found
    for p in parts:
        found = _body(p, ctx, depth + 1)
        if found is not None and found.text.strip():
            return found
    return None


def _mixed(parts: list[Message], ctx: _Ctx, depth: int) -> _Text | None:
    """First text part is the body; later inline parts of the same kind (Apple Mail splits the text
    around inline images) are appended; an HTML twin after a plain part (broken nesting) is not."""
    found: _Text | None = None
    extra: list[str] = []
    for p in parts:
        sub = _body(p, ctx, depth + 1)
        if sub is None or not sub.text.strip():
            continue
        if found is None:
            found = sub
        elif sub.kind == found.kind:
            extra.append(sub.text)
    if found is not None and extra:
        found = _Text("\n\n".join([found.text, *extra]), found.kind)
    return found


def _related_root(part: Message, parts: list[Message]) -> Message:
    start = str(part.get_param("start", "") or "").strip()
    for p in parts:
        if start and str(p.get("content-id", "")).strip() == start:
            return p
    return parts[0]


_BOUNDARY_LINE = re.compile(r"^--\S{2,}[ \t]*$", re.MULTILINE)


def _salvage(part: Message, ctx: _Ctx, depth: int) -> _Text | None:
    """A multipart whose boundary never matched: split at anything that looks like a boundary line,
    or, with none, read the payload as plain text (what a mail program shows)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or not data.strip():
        return None
    chunks = _BOUNDARY_LINE.split(data.decode("ascii", "surrogateescape"))
    if len(chunks) < 2:
        return _Text(decode_text(data, content_charset(part), ctx.fallbacks), "plain")
    parts = [_STR_PARSER.parsestr(c.removeprefix("\n")) for c in chunks[1:] if c.strip()]
    if part.get_content_subtype() == "alternative":
        return _alternative(parts, ctx, depth)
    return _mixed(parts, ctx, depth)


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("content-disposition", "")).split(";")[0].strip().lower()
    return disposition == "attachment" or _filename(part) is not None


def _filename(part: Message) -> str | None:
    if "name" not in f"{part.get('content-disposition', '')}{part.get('content-type', '')}".lower():
        return None  # parsing parameters is costly; most parts have no file name at all
    try:
        name = part.get_filename()
    except Exception:  # a broken RFC 2231 parameter is no reason to drop the mail
        return None
    return name.strip().lower() if isinstance(name, str) else None


def _leaf_text(part: Message, ctx: _Ctx, *, allow_html: bool) -> _Text | None:
    data = payload_bytes(part)
    charset = content_charset(part)
    is_html = part.get_content_type() == "text/html"
    if is_html and charset is None:
        m = re.search(rb"<meta[^>]{0,200}charset=[\"']?([\w.:-]+)", data[:4096], re.IGNORECASE)
        charset = m.group(1).decode("ascii") if m else None
    text = decode_text(data, charset, ctx.fallbacks)
    if is_html or looks_like_html(text):
        if not allow_html:
            return None
        return _Text(html_to_text(text, ctx.notes), "html")
    params = str(part.get("content-type", "")).lower()
    if "flowed" in params and str(part.get_param("format", "") or "").lower() == "flowed":
        text = unflow(text, str(part.get_param("delsp", "") or "").lower() == "yes")
    return _Text(text, "plain")


def _octet_body(msg: Message, ctx: _Ctx) -> _Text | None:
    """Outlook Express may send the whole body as application/octet-stream: read it when it is small
    and is text; anything binary stays unsent."""
    if msg.get_content_maintype() in ("multipart", "message") or ctx.tnef or ctx.encrypted:
        return None
    data = payload_bytes(msg)
    if not data or len(data) > _MAX_OCTET or b"\x00" in data:
        return None
    text = decode_text(data, content_charset(msg), ctx.fallbacks)
    if sum(ch < " " and ch not in "\t\n\r" for ch in text) > len(text) // 100:
        return None
    ctx.attachments = max(0, ctx.attachments - 1)
    ctx.notes.append("attachment read as text")
    return _Text(text, "plain")
