"""Premium passwords (R-4.2) and the addresses answers and confirmations come back to; pure.

A password is `KP` and three ASCII letters or digits, compared in upper case. Only ASCII counts:
a Cyrillic `К`, a fullwidth `ＫＰ` or the Kelvin sign look like the password but are other
characters, and an MO that guesses at them could reach the wrong client, so such an MO is
treated as carrying no password (it goes to the fallback address, recorded).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from base64 import b32encode
from typing import Literal, NamedTuple

_PASSWORD = re.compile(r"KP[A-Z0-9]{3}", re.ASCII | re.IGNORECASE)
# The no-break spaces of Polish typography (U+00A0, the narrow U+202F, the figure space U+2007):
# an ad prints `KP 123` with one so that the line never breaks inside it, and the public copies it.
_NO_BREAK = "\u00a0\u202f\u2007"
# The dashes an ad's typesetting or a phone's keyboard puts for `-`: hyphen, the non-breaking hyphen
# (`KP‑123` kept on one line, as the no-break spaces are), figure dash, en and em dash, horizontal
# bar, minus sign. `KP\u2011123` went to the fallback address: the client never saw the paid vote.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
# The invisible format characters (soft hyphen, zero-width space, joiners, direction marks and
# isolates, word joiner, BOM) a copy from a web page or a phone's text keeps: no part of what the
# public wrote. Listed, not found by scanning every code point for Unicode's Cf at import (15 ms of
# every command's start); the Cf signs of Arabic numbers are not among them.
_INVISIBLE = "".join(
    map(chr, (0xAD, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
              *range(0x2066, 0x2070), 0xFEFF))
)  # fmt: skip
# What may stand between the password and the message: `KP123 yes`, `KP123, yes`, `KP123:yes`.
# `KP123\u200byes` mailed the client `\u200byes`.
SEPARATORS = " \t\r\n,.;:!-_/" + _NO_BREAK + _DASHES + _INVISIBLE
# How the public writes a password with a gap in it: `KP 123`, `KP-123`, `kp. 123`, `KP_123`, `KP:123`.
# ASCII for the letters and digits (see above); the gap may be a no-break space, a dash or an
# invisible character as well.
_GAP = re.escape(" \t-._:" + _NO_BREAK + _DASHES + _INVISIBLE)
_SPACED = re.compile(rf"KP[{_GAP}]+([A-Z0-9]{{3}})(?![A-Z0-9])", re.ASCII | re.IGNORECASE)
_TARGET = re.compile(r"(premium|confirm)-([a-z2-7]{24})", re.ASCII | re.IGNORECASE)


class BadPassword(ValueError):
    """A password an admin typed that cannot be one; the text says why."""


def normalise(password: str) -> str:
    """`kp1a2` → `KP1A2`; raises BadPassword naming the rule."""
    p = password.strip()
    if not p.isascii() or not _PASSWORD.fullmatch(p):
        raise BadPassword(
            f"password {password!r} must be KP followed by three letters or digits (A-Z, 0-9), e.g. KP123"
        )
    return p.upper()


def _leading(text: str) -> str:
    """The text from its first visible character: white space, and the invisible marks (BOM,
    zero-width space) a phone may put first, are no part of a password."""
    start = 0
    while start < len(text) and (text[start].isspace() or unicodedata.category(text[start]) == "Cf"):
        start += 1
    return text[start:]


def split(text: str) -> tuple[str, str] | None:
    """(password, message) when the text starts with a password after white space, else None.

    The password is the first five characters, whatever follows (`kp123yes` is KP123 and "yes");
    separators after it are dropped from the message.
    """
    stripped = _leading(text)
    m = _PASSWORD.match(stripped)
    if m is None:
        return None
    return m.group(0).upper(), stripped[m.end() :].lstrip(SEPARATORS).rstrip()


def spaced(text: str) -> tuple[str, str] | None:
    """(password, message) for a password written with separators after `KP` (`KP 123 yes`,
    `kp.-123`), else None. The three characters must end there (`KP 1234` is no password): a
    caller takes it only when it names a service it knows, since the phone paid for the SMS and its
    client would otherwise never see the vote (R-4.4's fallback)."""
    stripped = _leading(text)
    m = _SPACED.match(stripped)
    if m is None:
        return None
    return f"KP{m.group(1).upper()}", stripped[m.end() :].lstrip(SEPARATORS).rstrip()


def new_token() -> str:
    """24 characters of base32 (120 bits): unguessable, and safe whatever case a mail server uses."""
    return b32encode(secrets.token_bytes(15)).decode("ascii").lower()


class Target(NamedTuple):
    kind: Literal["premium", "confirm"]
    token: str
    # The RCPT as the client gave it (its case, its domain), set at RCPT: an answer's SMS keeps it, as
    # a staff mail's SMS keeps theirs, for its bounce to name the address the client wrote to.
    rcpt: str | None = None


def target(local: str) -> Target | None:
    """The answer (`premium-<token>`) or confirmation (`confirm-<token>`) a local part names."""
    m = _TARGET.fullmatch(local)
    if m is None:
        return None
    return Target(m.group(1).lower(), m.group(2).lower())  # type: ignore[arg-type]


def address(kind: Literal["premium", "confirm"], token: str, domain: str) -> str:
    return f"{kind}-{token}@{domain}"
