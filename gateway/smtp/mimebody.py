"""Which part of a MIME tree is the message a person reads: text/plain first, then HTML, the
enclosed message, a GroupWise or Outlook Express shape, a multipart whose boundary never matched;
what is left over (attachments, a TNEF winmail.dat, encryption, a meeting invitation's text/calendar)
is noted for `gateway.smtp.intake`, and an invitation's title, start and place read (`invite`).

Its own module because walking the structure is one concern, bounded against hostile nesting, apart
from what intake makes of the text found (subject, cutting, machine mail, refusals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from zoneinfo import ZoneInfo

from gateway.smtp.charsets import content_charset, decode_text, payload_bytes, unflow
from gateway.smtp.htmlbody import html_to_text, looks_like_html

_MAX_DEPTH = 30  # MIME nesting; deeper is hostile, not a mail client
_MAX_OCTET = 65_536
_MAX_SALVAGED = 200  # parts read from a multipart whose boundary never matched (`_salvage`)
_STR_PARSER = Parser(policy=compat32)


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
    if ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or _filename(part) == "winmail.dat":
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
    if ctype == "application/x-microsoft-rpmsg-message" or (
        ctype == "application/octet-stream" and _filename(part) == "message.rpmsg"
    ):
        ctx.rights_protected = True
        return None
    if ctype == "text/calendar" and (depth == 0 or not _is_attachment(part)):
        _note_calendar(part, ctx)  # an .ics file attached to an ordinary mail stays an attachment
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
    """text/plain wins (R-1.3); otherwise the first alternative that yields any text. A text/calendar
    alternative (Outlook's invitation: text, HTML, calendar) is the same message as data, named or not."""
    for p in parts:
        if p.get_content_type() == "text/calendar":
            _note_calendar(p, ctx)
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
    and is text; anything binary stays unsent. A text/* type other than plain is a format with a
    reader of its own (a text/calendar invitation, a vCard): its source is no message for a phone."""
    if msg.get_content_maintype() in ("multipart", "message") or ctx.tnef or ctx.encrypted:
        return None
    if ctx.opaque_signed:
        return None
    if msg.get_content_maintype() == "text" and msg.get_content_type() != "text/plain":
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


@dataclass(frozen=True, slots=True)
class Invite:
    """What a phone needs of a meeting invitation (RFC 5545 VEVENT of an iTIP REQUEST)."""

    summary: str
    start: str  # "2026-12-07 10:00" in the gateway's zone, "2026-12-07" all day, "" unreadable
    location: str

    def line(self) -> str:
        return ", ".join(p for p in (self.start, self.location) if p)


_MAX_CALENDAR = 262_144  # an invitation with a long attendee list; beyond it only the start is read
_MAX_FIELD = 200  # a title or place longer than this is no longer "short"
_FOLD = re.compile(rb"\r?\n[ \t]")  # RFC 5545 3.1: folded at octets, possibly inside a UTF-8 letter
_ESCAPE = re.compile(r"\\([\\;,nN])")
_DATE_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?(Z)?)?$")
_IANA = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
# Outlook names the zone as Windows does (CLDR windowsZones, territory 001); the zones Polish
# senders and their partners are in. Another name is read as the wall time written.
_WINDOWS_ZONES = {
    "central european standard time": "Europe/Warsaw",
    "central europe standard time": "Europe/Budapest",
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "utc": "UTC",
    "coordinated universal time": "UTC",
    "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Kiev",
    "gtb standard time": "Europe/Bucharest",
    "russian standard time": "Europe/Moscow",
    "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles",
}


def invite(part: Message, fallbacks: tuple[str, ...], zone: str) -> Invite | None:
    """The title, start (in `zone`, the gateway's) and place of the first event of a text/calendar
    part that invites (METHOD:REQUEST); None for a cancellation, an answer or anything unreadable.

    Read by hand: the three fields need unfolding, unescaping and the TZID, UTC and all-day forms,
    not a calendar library (none is a dependency); recurrence and alarms do not matter here."""
    method, found = _calendar(part, fallbacks)
    if method != "REQUEST" or not found:
        return None
    start = _start(*found["DTSTART"], zone) if "DTSTART" in found else ""
    result = Invite(_text(found.get("SUMMARY")), start, _text(found.get("LOCATION")))
    return result if result.summary or result.line() else None


_SUBJECT_ALONE = frozenset({"REPLY", "CANCEL"})


def answers_invitation(part: Message, fallbacks: tuple[str, ...]) -> bool:
    """Whether a text/calendar part is an answer to an invitation or its cancellation (iTIP REPLY,
    CANCEL): its mail's subject says all ("Accepted: Budget meeting", "Anulowano: Narada"), and the
    text beside it is the calendar's boilerplate (Google's "Jan has accepted this invitation… /
    Invitation from Google Calendar…", two parts), not something a person wrote."""
    return _calendar(part, fallbacks)[0] in _SUBJECT_ALONE


def _calendar(part: Message, fallbacks: tuple[str, ...]) -> tuple[str, dict[str, tuple[str, str]]]:
    """The iTIP method (upper case; the VCALENDAR's METHOD, else the Content-Type's) and the first
    event's SUMMARY, DTSTART and LOCATION as (parameters, value)."""
    data = _FOLD.sub(b"", payload_bytes(part)[:_MAX_CALENDAR])
    text = decode_text(data, content_charset(part) or "utf-8", fallbacks)
    method = str(part.get_param("method", "") or "")
    stack: list[str] = []
    found: dict[str, tuple[str, str]] = {}
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        name, params, value = _content_line(line)
        if name == "BEGIN":
            stack.append(value.strip().upper())
        elif name == "END":
            if stack and stack[-1] == value.strip().upper():
                stack.pop()
            if value.strip().upper() == "VEVENT" and found:
                break  # the first event; later ones are a recurrence's exceptions
        elif stack == ["VCALENDAR"] and name == "METHOD":
            method = value
        elif stack[-1:] == ["VEVENT"] and name in ("SUMMARY", "DTSTART", "LOCATION"):
            found.setdefault(name, (params, value))
    return method.strip().upper(), found


def _content_line(line: str) -> tuple[str, str, str]:
    """(NAME, parameters, value) of `NAME;PARAM=...:value`; a colon inside a quoted parameter
    (`ALTREP="http://..."`) is not the one before the value."""
    if ":" not in line:
        return "", "", ""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            name, _, params = line[:i].partition(";")
            return name.strip().upper(), params, line[i + 1 :]
    return "", "", ""


def _param(params: str, name: str) -> str:
    m = re.search(rf'(?:^|;){name}=("[^"]*"|[^;]*)', params, re.IGNORECASE)
    return m.group(1).strip().strip('"').strip() if m else ""


def _text(prop: tuple[str, str] | None) -> str:
    """A TEXT value unescaped (`\\,` `\\;` `\\\\` `\\n`), its lines joined with commas, on one line."""
    if prop is None:
        return ""
    value = _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), prop[1])
    joined = ", ".join(" ".join(p.split()) for p in value.split("\n") if p.strip())
    return joined[:_MAX_FIELD].strip()


def _start(params: str, value: str, zone: str) -> str:
    m = _DATE_TIME.match(value.strip())
    if m is None:
        return ""
    year, month, day, hour, minute, second, utc = m.groups()
    try:
        if hour is None or _param(params, "VALUE").upper() == "DATE":
            return f"{date(int(year), int(month), int(day)):%Y-%m-%d}"  # all day: no zone to convert
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return ""
    written = UTC if utc else _zone(_param(params, "TZID"))
    here = _zone(zone)
    if written is not None and here is not None:  # a floating time or an unknown zone: as written
        when = when.replace(tzinfo=written).astimezone(here)
    return f"{when:%Y-%m-%d %H:%M}"


def _zone(name: str) -> tzinfo | None:
    """A Windows name, or an IANA zone, also at the end of a path ("/mozilla.org/…/Europe/Warsaw")."""
    windows = _WINDOWS_ZONES.get(" ".join(name.split()).casefold())
    parts = name.strip().split("/")
    for key in [windows] if windows else ["/".join(parts[-n:]) for n in (3, 2, 1) if len(parts) >= n]:
        if not _IANA.fullmatch(key):
            continue
        try:
            return ZoneInfo(key)
        except (KeyError, ValueError, OSError):  # not found (a KeyError), a bad key, an unreadable file
            continue
    return None
