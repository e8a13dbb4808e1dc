"""The display names a mail gives its To and Cc addresses (`"Pan Kowalski" <601123430@…>`): what the
sender's mail program calls each phone, which the phone's answers are then named by
(gateway.forwarded `sms_reply`)."""

from __future__ import annotations

import re

from gateway.smtp.charsets import decode_header

_ANGLE_ADDRESS = re.compile(r'<\s*([^<>@\s"]{1,64})@[^<>]{0,255}>')  # <601123430@sms.example.com>
_NAME_WINDOW = 2000  # characters before an address read for its name: one longer is no one's contact
_QUOTED_PAIR = re.compile(r"\\(.)")
_NAMED_MAX = 50  # addresses read per mail: a group mail names each phone, but not without end


def named(to: str, cc: str, fallbacks: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(local part casefolded, display name) of each named address in To and Cc.

    Read by hand, not by `email.headerregistry`, which costs over 100 µs per address on the hot
    path; nor by one regex for name and address, whose backtracking made a long hostile To cost
    seconds. Most mails name no one (no "<") and cost nothing here."""
    found: list[tuple[str, str]] = []
    for value in (to, cc):
        if "<" not in value:
            continue
        value = value.replace("\n", " ")
        pos = 0
        for m in _ANGLE_ADDRESS.finditer(value):
            before = value[max(pos, m.start() - _NAME_WINDOW) : m.start()].rstrip()
            pos = m.end()
            name = _name_at_end(before)
            if name and ("=?" in name or not name.isascii()):
                name = decode_header(name, fallbacks)
            if name:
                found.append((m.group(1).casefold(), name))
            if len(found) >= _NAMED_MAX:
                return tuple(found)
    return tuple(found)


def _name_at_end(before: str) -> str:
    """The display name `before` ends with: a quoted string (its escapes undone), or the phrase
    after the last comma or group colon."""
    if not before.endswith('"'):
        return before.rpartition(",")[2].rpartition(":")[2].strip()
    end = len(before) - 1
    start = before.rfind('"', 0, end)
    while start > 0 and before[start - 1] == "\\":
        start = before.rfind('"', 0, start - 1)
    if start < 0:
        return ""
    name = before[start + 1 : end]
    return (_QUOTED_PAIR.sub(r"\1", name) if "\\" in name else name).strip()
