"""Which part of a MIME tree is the message a person reads: text/plain first, then HTML, the
enclosed message, a GroupWise or Outlook Express shape, a multipart whose boundary never matched;
what is left over (attachments, a TNEF winmail.dat, encryption, a meeting invitation's text/calendar)
is noted for `gateway.smtp.intake` (an invitation's title, start and place are read by
`gateway.smtp.invitation`).

Its own module because walking the structure is one concern, bounded against hostile nesting, apart
from what intake makes of the text found (subject, cutting, machine mail, refusals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from email.policy import compat32

from gateway.configgateway import MAX_PARTS
from gateway.smtp.charsets import content_charset, decode_text, payload_bytes, unflow
from gateway.smtp.htmlbody import (
    autosig_lines,
    cut_marked_signature,
    html_to_text,
    looks_like_html,
    mark_line,
)

_MAX_DEPTH = 30  # MIME nesting; deeper is hostile, not a mail client
_MAX_OCTET = 65_536
_MAX_SALVAGED = 200  # parts read from a multipart whose boundary never matched (`_salvage`)
_STR_PARSER = Parser(policy=compat32)
# One mail's HTML conversions, shared by all its parts (`_html_text`). Each part is read to its first
# 500,000 characters (`htmlbody`), but nothing bounded the mail: 999 inline parts of 900 bytes of
# tables (1 MB) held the event loop for 5.5 s, and twenty at once an intake worker past its
# heartbeat. No further part is converted once the HTML text found holds four times what the
# longest SMS does (`MAX_PARTS` of 153 characters; counted without white space, which the cutting
# rules collapse): the SMS is cut as any long text is. Nor once the mail's HTML read is as much as
# one part may be (a part is converted only as far as the budget lasts: two parts of 495,000 were
# both converted whole), nor past a hundred parts of `_HTML_SMALL` or more. Apple Mail's text around
# inline pictures is a near-empty part between each two: those cost 0.15 ms each, as their bytes
# do, so they count toward the HTML read (as `_HTML_SMALL` at least, bounding their number) but
# not toward the hundred, which left the text of the last of 110 such parts unread.
_HTML_SHOWN_MAX = 4 * MAX_PARTS * 153
_HTML_READ_MAX = 500_000
_HTML_PARTS_MAX = 100
_HTML_SMALL = 512
# C0 controls but tab, line breaks (vertical tab and form feed too) and ESC (a script's coloured
# output): in text, bytes of a binary file.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
# A binary file decodes to ~11 % controls; a text may hold a few (a DOS ^Z at its end, a form feed,
# a BEL, FileMaker's vertical tabs for line breaks): more than 16, and one character in 20, is binary.
_BINARY_MIN = 16
_BINARY_SHARE = 20


def html_not_read(converted: int) -> str:
    """The note for HTML parts the budget left unread, `converted` having been read."""
    if converted == 1:
        return "HTML parts after the first not read"
    return f"HTML parts past the first {converted} not read"


class TooDeep(RecursionError):
    """MIME nested past `_MAX_DEPTH`: the text below it is not looked for, so the mail is refused
    as intake refuses nesting past the parser's stack ("MIME nesting too deep"). Returning nothing
    there sent the subject alone (250, the body lost without a word), or refused the mail as
    having no body at all."""


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
    # S/MIME signed with the text inside the signature (`smime-type=signed-data`, Outlook without "Send
    # clear text signed message"): no library the gateway has reads a CMS SignedData's content.
    opaque_signed: bool = False
    # Outlook's rights-protected mail (Encrypt, Do Not Forward; Microsoft Purview): the text beside
    # the message.rpmsg attachment only says that a protected message was sent.
    rights_protected: bool = False
    # Inline text/calendar parts (an Outlook or Google invitation): their source is no text for a
    # phone, but the time and place they hold are what the invitation is for.
    calendars: list[Message] = field(default_factory=list)
    html_parts: int = 0  # HTML parts converted, those not small, their characters, the text's
    html_large: int = 0
    html_read: int = 0
    html_shown: int = 0
    html_skipped: bool = False  # a part the budget left unread (`_html_text`): its text is unknown

    def fresh_budget(self) -> None:
        """An enclosed message read for want of text outside it gets a budget of its own: a forward's
        560 KB outer HTML (an inline data: picture, no text) had spent the mail's on nothing."""
        self.html_parts = self.html_large = self.html_read = self.html_shown = 0


def body(part: Message, ctx: BodyContext, depth: int) -> BodyText | None:
    """The text a person reading `part` in a mail program would take as the message."""
    if depth > _MAX_DEPTH:
        raise TooDeep(depth)
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
    name = _filename(part)
    if ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or name == "winmail.dat":
        ctx.tnef.append(part)
        return None
    if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        if _smime_signed(part):
            ctx.opaque_signed = True
        else:
            ctx.encrypted = True
        return None
    if ctype == "application/pgp-encrypted":
        ctx.encrypted = True
        return None
    rpmsg = ctype == "application/octet-stream" and name == "message.rpmsg"
    if ctype == "application/x-microsoft-rpmsg-message" or rpmsg:
        ctx.rights_protected = True
        return None
    if ctype == "text/calendar" and (depth == 0 or not _is_attachment(part, name)):
        _note_calendar(part, ctx)  # an .ics file attached to an ordinary mail stays an attachment
        return None
    if _is_attachment(part, name):
        ctx.attachments += 1
        return None
    if ctype in ("text/plain", "text/html", "application/plain"):
        return _leaf_text(part, ctx, allow_html=True)
    if main not in ("message", "text") and not ctype.endswith("pkcs7-signature"):
        ctx.attachments += 1  # an inline image or other non-text part: not sent
    return None


# A text/plain alternative that only says to read the HTML one, as some mailers and alerting systems
# write it: "To view the message, please use an HTML compatible email viewer!" went to the phone instead
# of the alert in the HTML part. Such a part is no text: the HTML alternative is the message.
_PLACEHOLDER = re.compile(
    r"(?i:to view (this|the) (message|e-?mail),? (please )?(use|open it (in|with)) an? html[- ]?"
    r"(compatible|capable|enabled)|this is an? html[- ](formatted )?(message|e-?mail)"
    r"|this (message|e-?mail) (is in|requires|contains only|is formatted in) html"
    r"|your (e-?mail|mail) (client|program|reader|viewer) (does not|doesn't|cannot|can't)"
    r" (support|display) html"
    r"|(ta )?wiadomość (jest )?(w formacie|zapisana w formacie|sformatowana w) html"
    r"|aby (wyświetlić|zobaczyć|przeczytać|odczytać) (tę |tą |tej )?wiadomoś\w+.{0,60}html"
    r"|twój (program pocztowy|klient poczty|program do poczty) nie obsługuje (formatu )?html)"
)
_PLACEHOLDER_MAX = 300


def _placeholder(text: str) -> bool:
    """Whether a text/plain alternative is only a note to read the HTML one (`_PLACEHOLDER`): short, and
    opening with such a sentence."""
    text = text.strip()
    return len(text) <= _PLACEHOLDER_MAX and _PLACEHOLDER.match(text.lstrip("*-=!# ")) is not None


def _alternative(parts: list[Message], ctx: BodyContext, depth: int) -> BodyText | None:
    """text/plain wins (R-1.3), unless it is only a note to read the HTML (`_placeholder`); otherwise the
    first alternative that yields any text. A text/calendar alternative (Outlook's invitation: text,
    HTML, calendar) is the same message as data, named or not."""
    for p in parts:
        if p.get_content_type() == "text/calendar":
            _note_calendar(p, ctx)
    placeholders: list[Message] = []
    note: BodyText | None = None  # the placeholder's text, sent when no other alternative has any
    for p in parts:
        if p.get_content_type() == "text/plain" and not _is_attachment(p, _filename(p)):
            found = _leaf_text(p, ctx, allow_html=False)
            if found is not None and _placeholder(found.text):
                placeholders.append(p)
                note = note or found
            elif found is not None and found.text.strip():
                return _without_autosig(found, parts, ctx)
    for p in parts:
        if any(p is q for q in placeholders):
            continue
        found = body(p, ctx, depth + 1)
        if found is not None and found.text.strip():
            return found
    return note


def _without_autosig(found: BodyText, parts: list[Message], ctx: BodyContext) -> BodyText:
    """The text alternative without Outlook's automatic signature, where the HTML alternative's bookmark
    says it starts (`htmlbody.autosig_lines`): the text has no mark of it, and "Jan Kowalski\n
    Kierownik Działu Zakupów\nACME Sp. z o.o." went to the phone under a From of "Biuro". Cut by the
    HTML rule (`cut_marked_signature`): only when what lies below passes a signature block's guards."""
    for p in parts:
        if p.get_content_type() == "multipart/related" and isinstance(p.get_payload(), list):
            p = _related_root(p, [q for q in p.get_payload() if isinstance(q, Message)] or [p])
        if p.get_content_type() != "text/html" or b"_MailAutoSig" not in (data := payload_bytes(p)):
            continue
        line = autosig_lines(decode_text(data, _html_charset(p, data), ctx.fallbacks))
        if line:
            return BodyText(cut_marked_signature(mark_line(found.text, line), ctx.notes), found.kind)
    return found


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


def _note_calendar(part: Message, ctx: BodyContext) -> None:
    if all(part is not seen for seen in ctx.calendars):
        ctx.calendars.append(part)


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
    # The first parts only: `mimebound` counts declared boundaries, and 25,000 of these took 2 s.
    parts = [_STR_PARSER.parsestr(c.removeprefix("\n")) for c in chunks[1:_MAX_SALVAGED] if c.strip()]
    if part.get_content_subtype() == "alternative":
        return _alternative(parts, ctx, depth)
    return _mixed(parts, ctx, depth)


# The object identifier of CMS SignedData (1.2.840.113549.1.7.2, RFC 5652 5.1) as DER writes it.
_SIGNED_DATA_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"


def _smime_signed(part: Message) -> bool:
    """An opaque-signed S/MIME part (RFC 8551 3.5.2): `smime-type=signed-data`, or, from a client
    that leaves the parameter out, a ContentInfo whose first bytes name SignedData."""
    kind = str(part.get_param("smime-type", "") or "").strip().lower()
    if kind:
        return kind == "signed-data"
    return _SIGNED_DATA_OID in payload_bytes(part)[:32]


def _is_attachment(part: Message, name: str | None) -> bool:  # name: its `_filename` (`body` reads it once)
    disposition = str(part.get("content-disposition", "")).split(";")[0].strip().lower()
    return disposition == "attachment" or name is not None


def _filename(part: Message) -> str | None:
    if "name" not in f"{part.get('content-disposition', '')}{part.get('content-type', '')}".lower():
        return None  # parsing parameters is costly; most parts have no file name at all
    try:
        name = part.get_filename()
    except Exception:  # a broken RFC 2231 parameter is no reason to drop the mail
        return None
    return name.strip().lower() if isinstance(name, str) else None


# An HTML part's own word on its charset, where its MIME header names none: <meta charset="…"> or
# <meta http-equiv="Content-Type" content="text/html; charset=…">, in its head.
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset=[\"']?([\w.:-]+)", re.IGNORECASE)


def _html_charset(part: Message, data: bytes) -> str | None:
    """The charset of an HTML part: its MIME header's, else its <meta>'s (`_META_CHARSET`). The same for
    the body read from it and for the bookmark line looked for in its text twin (`_without_autosig`):
    read by the fallbacks there, "Lefèvre" in windows-1252 was "Lefčvre" and the signature went out."""
    charset = content_charset(part)
    if charset is None and (m := _META_CHARSET.search(data[:4096])) is not None:
        charset = m.group(1).decode("ascii")
    return charset


def _leaf_text(part: Message, ctx: BodyContext, *, allow_html: bool) -> BodyText | None:
    data = payload_bytes(part)
    is_html = part.get_content_type() == "text/html"
    text = decode_text(data, _html_charset(part, data) if is_html else content_charset(part), ctx.fallbacks)
    if is_html or looks_like_html(text):
        if not allow_html:
            return None
        shown = _html_text(text, ctx)
        return None if shown is None else BodyText(shown, "html")
    if _binary(text):  # a binary file piped into mailx: six UCS-2 parts of noise on the phone
        if allow_html:  # counted once: `_alternative` looks at a plain part twice
            ctx.attachments += 1
        return None
    params = str(part.get("content-type", "")).lower()
    if "flowed" in params and str(part.get_param("format", "") or "").lower() == "flowed":
        text = unflow(text, str(part.get_param("delsp", "") or "").lower() == "yes")
    return BodyText(text, "plain")


def octet_body(msg: Message, ctx: BodyContext) -> BodyText | None:
    """Outlook Express may send the whole body as application/octet-stream: read it when it is small
    and is text; anything binary stays unsent. A text/* type other than plain is a format with a
    reader of its own (a text/calendar invitation, a vCard): its source is no message for a phone."""
    if msg.get_content_maintype() in ("multipart", "message") or ctx.tnef or ctx.encrypted:
        return None
    if ctx.opaque_signed:
        return None
    if msg.get_content_maintype() == "text" and msg.get_content_type() != "text/plain":
        return None
    data = payload_bytes(msg)
    if not data or len(data) > _MAX_OCTET or data.find(b"\x00") >= 0:  # `find`: see protocol._unstuffed
        return None
    text = decode_text(data, content_charset(msg), ctx.fallbacks)
    if _binary(text):
        return None
    ctx.attachments = max(0, ctx.attachments - 1)
    ctx.notes.append("attachment read as text")
    return BodyText(text, "plain")


def _html_text(markup: str, ctx: BodyContext) -> str | None:
    """The text of one HTML part within the mail's budget (`_HTML_SHOWN_MAX` and the others); None
    past it: a part not read is no part without text (the walk goes on, intake does not say that
    the text of an attached message was used, nor that the mail had none). The first part is always
    read."""
    left = _HTML_READ_MAX - ctx.html_read
    if ctx.html_shown >= _HTML_SHOWN_MAX or left <= 0 or ctx.html_large >= _HTML_PARTS_MAX:
        ctx.html_skipped = True
        ctx.notes.append(html_not_read(ctx.html_parts))
        return None
    markup = markup[:left]
    text = cut_marked_signature(html_to_text(markup, ctx.notes), ctx.notes)
    ctx.html_parts += 1
    ctx.html_large += len(markup) >= _HTML_SMALL
    ctx.html_read += max(len(markup), _HTML_SMALL)
    ctx.html_shown += len(text) - sum(map(text.count, " \n\t\r\xa0"))
    return text


def _binary(text: str) -> bool:
    """Whether decoded bytes are no text: more than `_BINARY_MIN` control characters and more than
    one in `_BINARY_SHARE`. UTF-16 read a byte a character (undeclared, or under a label no codec
    knows) has a NUL beside each letter, which normalising drops: those are not counted."""
    controls = len(_CONTROL.findall(text))
    if controls <= _BINARY_MIN:
        return False
    size, half = len(text), len(text) // 2
    for nuls in (text[0::2].count("\x00"), text[1::2].count("\x00")):
        if nuls * 5 >= half * 4:  # a NUL at four in five of the even (or odd) places: UTF-16's shape
            controls, size = controls - nuls, size - nuls
    return controls > max(_BINARY_MIN, size // _BINARY_SHARE)
