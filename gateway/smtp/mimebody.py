"""Which part of a MIME tree is the message a person reads: text/plain first, then HTML, the
enclosed message, a GroupWise or Outlook Express shape, a multipart whose boundary never matched;
what is left over (attachments, a TNEF winmail.dat, encryption) is noted for `gateway.smtp.intake`.

Its own module because walking the structure is one concern, bounded against hostile nesting, apart
from what intake makes of the text found (subject, cutting, machine mail, refusals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from email.policy import compat32

from gateway.smtp.charsets import content_charset, decode_text, payload_bytes, unflow
from gateway.smtp.htmlbody import html_to_text, looks_like_html

_MAX_DEPTH = 30  # MIME nesting; deeper is hostile, not a mail client
_MAX_OCTET = 65_536
_STR_PARSER = Parser(policy=compat32)


@dataclass(slots=True)
class BodyText:
    text: str
    kind: str  # "plain" | "html"


@dataclass(slots=True)
class BodyContext:
    fallbacks: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    tnef: list[Message] = field(default_factory=list)
    enclosed: list[Message] = field(default_factory=list)
    attachments: int = 0
    encrypted: bool = False


def body(part: Message, ctx: BodyContext, depth: int) -> BodyText | None:
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
                return body(parts[0], ctx, depth + 1)
            ctx.enclosed.append(parts[0])
            return None
        if sub == "alternative":
            return _alternative(parts, ctx, depth)
        if sub == "encrypted":
            ctx.encrypted = True
            return None
        if sub in ("signed", "report"):  # the signed content / the human-readable part
            return body(parts[0], ctx, depth + 1) if parts else None
        if sub == "related":
            return body(_related_root(part, parts), ctx, depth + 1) if parts else None
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


def _alternative(parts: list[Message], ctx: BodyContext, depth: int) -> BodyText | None:
    """text/plain wins (R-1.3); otherwise the first alternative that yields any text."""
    for p in parts:
        if p.get_content_type() == "text/plain" and not _is_attachment(p):
            found = _leaf_text(p, ctx, allow_html=False)
            if found is not None and found.text.strip():
                return found
    for p in parts:
        found = body(p, ctx, depth + 1)
        if found is not None and found.text.strip():
            return found
    return None


def _mixed(parts: list[Message], ctx: BodyContext, depth: int) -> BodyText | None:
    """First text part is the body; later inline parts of the same kind (Apple Mail splits the text
    around inline images) are appended; an HTML twin after a plain part (broken nesting) is not."""
    found: BodyText | None = None
    extra: list[str] = []
    for p in parts:
        sub = body(p, ctx, depth + 1)
        if sub is None or not sub.text.strip():
            continue
        if found is None:
            found = sub
        elif sub.kind == found.kind:
            extra.append(sub.text)
    if found is not None and extra:
        found = BodyText("\n\n".join([found.text, *extra]), found.kind)
    return found


def _related_root(part: Message, parts: list[Message]) -> Message:
    start = str(part.get_param("start", "") or "").strip()
    for p in parts:
        if start and str(p.get("content-id", "")).strip() == start:
            return p
    return parts[0]


_BOUNDARY_LINE = re.compile(r"^--\S{2,}[ \t]*$", re.MULTILINE)


def _salvage(part: Message, ctx: BodyContext, depth: int) -> BodyText | None:
    """A multipart whose boundary never matched: split at anything that looks like a boundary line,
    or, with none, read the payload as plain text (what a mail program shows)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or not data.strip():
        return None
    chunks = _BOUNDARY_LINE.split(data.decode("ascii", "surrogateescape"))
    if len(chunks) < 2:
        return BodyText(decode_text(data, content_charset(part), ctx.fallbacks), "plain")
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


def _leaf_text(part: Message, ctx: BodyContext, *, allow_html: bool) -> BodyText | None:
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
        return BodyText(html_to_text(text, ctx.notes), "html")
    params = str(part.get("content-type", "")).lower()
    if "flowed" in params and str(part.get_param("format", "") or "").lower() == "flowed":
        text = unflow(text, str(part.get_param("delsp", "") or "").lower() == "yes")
    return BodyText(text, "plain")


def octet_body(msg: Message, ctx: BodyContext) -> BodyText | None:
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
    return BodyText(text, "plain")
