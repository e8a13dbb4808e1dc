"""Signatures and sign-offs at the end of a mail body (R-1.3), for gateway.smtp.textclean: the lines
from which everything below is a signature ("-- ", "Sent from my iPhone"), a short "Pozdrawiam" /
"Regards" block closing the text, and a one-line "--Bob". A list written with "-- " items is the
person's text, and a postscript below the name is written to be read: both stay.
"""

from __future__ import annotations

import re

SIGNATURE = "signature"

# Lines from which everything below is a signature. "-- " loses its space in many clients and in HTML
# conversion, so a bare "--" counts too.
SIGNATURE_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (SIGNATURE, re.compile(r"^--\s*$")),
    (
        SIGNATURE,
        re.compile(
            r"^(?i:sent from my \S+( \S+){0,3}"
            r"|sent from my \S+( \S+){0,3} with \S+ mail\.?( please excuse my brevity)?"
            r"|sent from (mail|outlook) for \S+"
            r"|sent from yahoo mail( for \S+)?|sent with \S+ mail|get outlook for (ios|android)"
            r"|download outlook for (ios|android)|sent from samsung mobile|sent via blackberry\b.*"
            r"|wysłan[eo] z (mojego )?(iphone'?a|ipada|iphone|ipad|telefonu|smartfona|urządzenia|galaxy)"
            r"\S*( \S+){0,3}"
            r"|wysłan[eo] z aplikacji (poczta\b.*|outlook (dla (systemu )?|for )(ios|android))"
            r"|pobierz (aplikację |program )?outlook (dla (systemu )?|for )(ios|android)"
            r"|von meinem \S+ gesendet)\s*(<[^>]*>)?\.?$",
        ),
    ),
    (SIGNATURE, re.compile(r"^\{EMAILSIGNATURE\}$")),
    (SIGNATURE, re.compile(r"^-- ?[A-Z][\w.' -]{0,40}$")),  # "-- Greg": the delimiter and a name on one line
)

_SIGNATURE_ANY = re.compile("|".join(f"(?:{p.pattern})" for _, p in SIGNATURE_STARTS))

# Sign-off lines ("Pozdrawiam," / "Z poważaniem," + name, title, phone). Cut only when something was
# written above and only a short block of short lines follows, so that a longer text that merely
# contains such a word is never lost.
# Possessive runs (*+): the punctuation classes overlap, and with backtracking a sign-off word
# followed by 40,000 spaces and one other character took seconds to refuse (quadratic).
_NAME = r"[A-ZĄĆĘŁŃÓŚŹŻ][\w.'-]*+(\s+[A-ZĄĆĘŁŃÓŚŹŻ][\w.'-]*+){0,2}"
SIGN_OFF = re.compile(
    r"^(?i:pozdrawiam( serdecznie| cieplutko| gorąco| wszystkich)?|serdecznie pozdrawiam"
    r"|serdeczne pozdrowienia|pozdrowienia|pozdr|z poważaniem|z wyrazami szacunku"
    r"|łączę (pozdrowienia|wyrazy szacunku)|best regards|kind regards|warm regards|regards|best wishes|br"
    r"|mit freundlichen grüßen|viele grüße)"
    rf"[\s,.!-]*+({_NAME})?[\s,.!]*+$"
)
SIGN_OFF_MAX_LINES = 8
SIGN_OFF_MAX_WIDTH = 100
# A "-- Name" line followed by another "-- ..." line is a list the person wrote, not a signature.
_LIST_ITEM = re.compile(r"^--\s?\S")
# "PS. Sala 204 zamiast 101.", "P.S.: ...", "PS ..."
_POSTSCRIPT = re.compile(r"^(?i:p\.?\s?s\b)[.:]?")
# A one-line sign-off at the very end: "--Bob", "---/dev/il", "~Danielle".
_DASH_SIGN_OFF = re.compile(r"^(-{2,3}\s?\S.{0,30}|~\s?[A-Z][\w .'-]{0,30})$")


def is_signature_line(text: str) -> bool:
    """Whether a stripped line starts a signature (everything below it is one)."""
    return _SIGNATURE_ANY.match(text) is not None


def cut_signature(lines: list[str], removed: list[str]) -> list[str]:
    """The lines without their signature: from a signature line down, else a closing sign-off block
    (only when something was written above it and it is short), else a one-line "--Bob"."""
    for i, line in enumerate(lines):
        if is_signature_line(line.strip()) and not _in_list(lines, i):
            removed.append(SIGNATURE)
            return cut_signature(lines[:i], removed)
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    if last < 0:
        return lines
    ending = lines[last].strip()
    if _DASH_SIGN_OFF.match(ending) and any(x.strip() for x in lines[:last]) and not _in_list(lines, last):
        removed.append(SIGNATURE)
        return lines[:last]
    for i in range(max(0, last - SIGN_OFF_MAX_LINES), last + 1):
        if SIGN_OFF.match(lines[i].strip()) and any(x.strip() for x in lines[:i]):
            tail = [x for x in lines[i + 1 : last + 1] if x.strip()]
            if len(tail) <= SIGN_OFF_MAX_LINES and all(len(x) <= SIGN_OFF_MAX_WIDTH for x in tail):
                removed.append(SIGNATURE)
                # A postscript below the name is written to be read: it stays.
                ps = next((j for j in range(i + 1, last + 1) if _POSTSCRIPT.match(lines[j].strip())), None)
                return lines[:i] + (["", *lines[ps : last + 1]] if ps is not None else [])
    return lines


def _in_list(lines: list[str], i: int) -> bool:
    """Whether line `i` ("-- Sala 204") has a "-- ..." line next to it (the nearest non-empty one
    above or below): a list the person wrote, not a signature."""
    if not _LIST_ITEM.match(lines[i].strip()):
        return False  # the "--" delimiter itself, or a signature of another form
    below = next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
    above = next((x.strip() for x in reversed(lines[:i]) if x.strip()), "")
    return bool(_LIST_ITEM.match(below) or _LIST_ITEM.match(above))
