"""The display names a mail gives its To and Cc addresses (`"Pan Kowalski" <601123430@…>`): what the
sender's mail program calls each phone, which the phone's answers are then named by
(gateway.forwarded `sms_reply`)."""

from __future__ import annotations

import re

from gateway.smtp.charsets import decode_header

# <601123430@sms.example.com>, and <"601 123 430"@sms.example.com> as Outlook writes a contact's
# number with spaces (a quoted local part, RFC 5322 3.4.1). Each form bounded, and the quoted one's
# two kinds of character (a quoted pair, anything else) never overlap: no backtracking to blow up.
_ANGLE_ADDRESS = re.compile(r'<\s*("(?:[^"\\<>\r\n]|\\[^\r\n]){1,64}"|[^<>@\s"]{1,64})@[^<>]{0,255}>')
_NAME_WINDOW = 2000  # characters before an address read for its name: one longer is no one's contact
_QUOTED_PAIR = re.compile(r"\\(.)")
_NAMED_MAX = 50  # addresses read per mail: a group mail names each phone, but not without end
# Addresses looked at per header, named or not: a mail reaches 100 phones at most (relay.py
# MAX_RECIPIENTS), and 12,500 bare addresses in a 100 KB To cost 35 ms read to the end.
_ADDRESSES_MAX = 1000


def named(to: str, cc: str, fallbacks: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(local part casefolded, its quotes and escapes undone, display name) of each named address in
    To and Cc: `"601 123 430"` gives `601 123 430`, read as a number like any RCPT form (compose.py
    matches names to phones by the E.164 number, not by how the address was written).

    Read by hand, not by `email.headerregistry`, which costs over 100 µs per address on the hot
    path; nor by one regex for name and address, whose backtracking made a long hostile To cost
    seconds. Most mails name no one (no "<") and cost nothing here."""
    found: list[tuple[str, str]] = []
    for value in (to, cc):
        if "<" not in value:
            continue
        value = value.replace("\n", " ")
        pos = 0
        for seen, m in enumerate(_ANGLE_ADDRESS.finditer(value)):
            if seen >= _ADDRESSES_MAX:
                break
            before = value[max(pos, m.start() - _NAME_WINDOW) : m.start()].rstrip()
            pos = m.end()
            name = _name_at_end(before)
            if name and ("=?" in name or not name.isascii()):
                name = decode_header(name, fallbacks)
            if name:
                found.append((_unquoted(m.group(1)).casefold(), name))
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


def _unquoted(local: str) -> str:
    """A local part as its quotes say: `"601\\ 123"` is `601 123`; a bare one as written."""
    if not local.startswith('"'):
        return local
    inner = local[1:-1]
    return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner
