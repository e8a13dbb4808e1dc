"""The vCards and vCalendars in a phone's answer, for its reply mail to attach as files."""

from __future__ import annotations

import re

from gateway import mailheaders as h

# A vCard or vCalendar a phone sent (UDH port 9204/9205, `smsc.decoding.octets_text`): attached too,
# so that a click puts the contact or the appointment in the user's address book or calendar.
_BEGIN = re.compile(r"^BEGIN:(VCARD|VCALENDAR)[ \t]*\n", re.I | re.M)
_END = {kind: re.compile(rf"^END:{kind}[ \t]*$", re.I | re.M) for kind in ("VCARD", "VCALENDAR")}
_CARD_FILES = {"VCARD": ("vcard", "contact{}.vcf"), "VCALENDAR": ("x-vcalendar", "event{}.vcs")}
CARDS_MAX = 10


def cards(text: str) -> list[tuple[str, str, str]]:
    """(subtype, file name, text) of each vCard or vCalendar in `text`, at most `CARDS_MAX`: from a
    BEGIN line to the first END line of its kind, a BEGIN without one left out.

    Linear in the text: one lazy regex from BEGIN to END scanned to the end of the text for every
    BEGIN without its END, and "BEGIN:VCARD" 2,900 times (35 KB, a 255-part MO) held the event loop
    for most of a second. Here an END is looked for once past each card, and a kind found without
    one after some BEGIN has none after any later BEGIN either, so it is not looked for again."""
    body = h.body(text)
    found: list[tuple[str, str, str]] = []
    ended = dict.fromkeys(_END, True)  # False: no END of this kind after the last BEGIN of it
    pos = 0
    while len(found) < CARDS_MAX and (begin := _BEGIN.search(body, pos)) is not None:
        pos = begin.end()
        kind = begin[1].upper()
        end = _END[kind].search(body, pos) if ended[kind] else None
        if end is None:
            ended[kind] = False
            continue
        pos = end.end()
        subtype, name = _CARD_FILES[kind]
        name = name.format(f"-{len(found) + 1}" if found else "")
        found.append((subtype, name, body[begin.start() : end.end()] + "\n"))
    return found
