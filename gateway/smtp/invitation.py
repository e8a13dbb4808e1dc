"""A meeting invitation's title, start and place, read from its text/calendar part (RFC 5545, iTIP),
for `gateway.smtp.intake`: what a phone needs of an Outlook or Google invitation, whose source is
no text for a phone; and whether such a part only answers or cancels one.

Its own module because reading a calendar is apart from finding the message in the MIME tree
(`gateway.smtp.mimebody`, which notes the calendar parts it meets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from email.message import Message
from zoneinfo import ZoneInfo

from gateway.smtp.charsets import content_charset, decode_text, payload_bytes


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


def invite(part: Message, fallbacks: tuple[str, ...], zone: str, method: str = "REQUEST") -> Invite | None:
    """The title, start (in `zone`, the gateway's) and place of the first event of a text/calendar
    part that invites (METHOD:REQUEST), or of another `method` (a cancellation's: CANCEL); None for
    any other, or anything unreadable.

    Read by hand: the three fields need unfolding, unescaping and the TZID, UTC and all-day forms,
    not a calendar library (none is a dependency); recurrence and alarms do not matter here."""
    found_method, found = _calendar(part, fallbacks)
    if found_method != method or not found:
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
