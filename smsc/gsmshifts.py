"""The national language shift tables of 3GPP TS 23.038 (Annex A) a phone names in an MO's UDH, and
the received septets read with them.

Phones in Turkey, Spain and Portugal (and India) save parts by naming a national single shift table
(23.040 9.2.3.24.15, IEI 0x24: what ESC + code means) or locking shift table (9.2.3.24.16, IEI 0x25:
what every code means) instead of sending UCS-2. Read with the default tables, a Turkish "Ğ" (single
shift 0x47) came as "G" and "ı" (locking 0x07) as "ì", with nothing to tell the reader.

The tables of Turkish, Spanish (single shift only: A.3.2 is void) and Portuguese are here as data. The
Indian ones (language 4-13) and ids 23.038 does not define are read with the default tables, and the
mail says so (`note`); the text stored is the SMS's alone, the languages kept beside it (`unread`), so
that an opt-out word or a premium password is read as the phone sent it. The gsm0338 package has only
the Spanish single shift table and no locking one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from smsc.gsmalphabet import GSM_BASIC_BY_CODE, GSM_EXTENSION_BY_CODE, gsm_decode

IEI_SINGLE_SHIFT = 0x24
IEI_LOCKING_SHIFT = 0x25

# 23.038 6.2.1.2.4: National Language Identifier.
LANGUAGES = (
    "default", "Turkish", "Spanish", "Portuguese", "Bengali", "Gujarati", "Hindi", "Kannada", "Malayalam",
    "Oriya", "Punjabi", "Tamil", "Telugu", "Urdu",
)  # fmt: skip


def _by_code(table: str) -> dict[int, str]:
    if len(table) != 128:
        raise ValueError(f"a GSM table has 128 codes, not {len(table)}")
    return dict(enumerate(table))


# Locking shift tables by code, 0x1B (ESC) kept as itself.
LOCKING: dict[int, Mapping[int, str]] = {
    0: GSM_BASIC_BY_CODE,
    # A.3.1 Turkish National Language Locking Shift Table
    1: _by_code(
        "@£$¥€éùıòÇ\nĞğ\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bŞşßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "İABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§çabcdefghijklmnopqrstuvwxyzäöñüà"
    ),
    # A.3.2 (Spanish) is void: a phone naming it means the default alphabet.
    2: GSM_BASIC_BY_CODE,
    # A.3.3 Portuguese National Language Locking Shift Table
    3: _by_code(
        "@£$¥êéúíóç\nÔô\rÁáΔ_ªÇÀ∞^\\€Ó|\x1bÂâÊÉ !\"#º%&'()*+,-./0123456789:;<=>?"
        "ÍABCDEFGHIJKLMNOPQRSTUVWXYZÃÕÚÜ§~abcdefghijklmnopqrstuvwxyzãõ`üà"
    ),
}
# The codes every Latin single shift table shares with 6.2.1.1's (form feed, ^ { } \ [ ~ ] | €).
_COMMON = dict(GSM_EXTENSION_BY_CODE)
# A.2.1 Turkish National Language Single Shift Table
_TURKISH_SINGLE = {0x47: "Ğ", 0x49: "İ", 0x53: "Ş", 0x63: "ç", 0x67: "ğ", 0x69: "ı", 0x73: "ş"}
# A.2.2 Spanish National Language Single Shift Table
_SPANISH_SINGLE = {
    0x09: "ç", 0x41: "Á", 0x49: "Í", 0x4F: "Ó", 0x55: "Ú", 0x61: "á", 0x69: "í", 0x6F: "ó", 0x75: "ú",
}  # fmt: skip
# A.2.3 Portuguese National Language Single Shift Table
_PORTUGUESE_SINGLE = {
    0x05: "ê", 0x09: "ç", 0x0B: "Ô", 0x0C: "ô", 0x0E: "Á", 0x0F: "á", 0x12: "Φ", 0x13: "Γ", 0x15: "Ω",
    0x16: "Π", 0x17: "Ψ", 0x18: "Σ", 0x19: "Θ", 0x1F: "Ê", 0x41: "À", 0x49: "Í", 0x4F: "Ó", 0x55: "Ú",
    0x5B: "Ã", 0x5C: "Õ", 0x61: "Â", 0x69: "í", 0x6F: "ó", 0x75: "ú", 0x7B: "ã", 0x7C: "õ", 0x7F: "â",
}  # fmt: skip
# Single shift tables: the character of ESC + code; a code with none shows the locking table's.
SINGLE: dict[int, Mapping[int, str]] = {
    0: GSM_EXTENSION_BY_CODE,
    1: _COMMON | _TURKISH_SINGLE,
    2: _COMMON | _SPANISH_SINGLE,
    3: _COMMON | _PORTUGUESE_SINGLE,
}

# Kept in a segment's stored text until its segments are joined (`smsc.decoding.mend_edges`), in
# plane 16's private use area below the markers `smsc.decoding` has: U+10F400 + language at the start
# of a segment read with a national locking shift table (an ESC ending the segment before it stands
# for the code of its first character, which only that table gives back), U+10F400 alone for one
# whose UDH names a national table but that was read with the default locking table (0.2.25 stored
# no such marker: a part without one is read back as it did, `_mend_escape`); U+10F500 + language for a
# text read with the default tables in place of that language's (whole texts carry it to the store
# too, which keeps it beside the text: `unread`); U+10F700 + language for an ESC that ended a
# segment under a national single shift table (its character starts the next one).
_LOCKED = 0x10F400
_UNREAD = 0x10F500
_EDGE_ESC = 0x10F700
UNREAD_ANY = re.compile("[\U0010f500-\U0010f5ff]")
_LOCKED_ANY = re.compile("[\U0010f400-\U0010f4ff]")
# An ESC that ended a segment (a national single shift table's, or the default one's before a segment
# read with a national locking table), that segment's table, and the next one's first character.
_EDGE_ESCAPED = re.compile(
    "(?:([\U0010f701-\U0010f7fe])([\U0010f400-\U0010f4ff]?)|(\U0010f7ff)([\U0010f400-\U0010f4ff]))([\\s\\S]?)"
)
# What the store keeps beside the text of an MO read so (`gateway.store.mo`), until its mail says it.
UNREAD_NOTE = "alphabet not read: "


@dataclass(frozen=True, slots=True)
class Shifts:
    """The tables a UDH names: 0 is the default alphabet (and its extension table)."""

    locking: int = 0
    single: int = 0

    def unread(self) -> tuple[int, ...]:
        """The languages named whose tables are not here: read with the default ones instead."""
        return tuple(dict.fromkeys(n for n, known in ((self.locking, LOCKING), (self.single, SINGLE))
                                   if n not in known))  # fmt: skip

    def tables(self) -> tuple[Mapping[int, str], Mapping[int, str]]:
        """The locking and single shift tables by code, the default ones for a language not here."""
        return LOCKING.get(self.locking, GSM_BASIC_BY_CODE), SINGLE.get(self.single, GSM_EXTENSION_BY_CODE)

    def edge_escape(self) -> str | None:
        """The marker of an ESC ending a segment under this single shift table; None for the default's."""
        return chr(_EDGE_ESC + self.single) if self.single in SINGLE and self.single else None


DEFAULT = Shifts()


def shifts_of(udh: bytes) -> Shifts:
    """The shift tables a UDH (from its UDHL octet) names. An element of the wrong length is ignored;
    of two of a kind the last counts (23.040 9.2.3.24: a receiver uses the last of a repeated one)."""
    found = {IEI_LOCKING_SHIFT: 0, IEI_SINGLE_SHIFT: 0}
    body = udh[1 : 1 + udh[0]] if udh else b""
    i = 0
    while i + 2 <= len(body):
        iei, iel = body[i], body[i + 1]
        if iei in found and iel == 1 and i + 2 < len(body):
            found[iei] = body[i + 2]
        i += 2 + iel
    return Shifts(locking=found[IEI_LOCKING_SHIFT], single=found[IEI_SINGLE_SHIFT])


def decode(data: bytes, shifts: Shifts) -> str:
    """Unpacked septets read with the tables `shifts` names. Never raises."""
    if shifts == DEFAULT:
        return gsm_decode(data)
    return gsm_decode(data, *shifts.tables())


def marked(text: str, shifts: Shifts, *, segment: bool) -> str:
    """Text read with `shifts`' tables, marked for the store: it starts with a marker of each language
    whose tables were not here (`unread`), and a segment whose UDH names a national table with one of
    the locking table it was read with, which `mend` reads and drops once its segments are joined."""
    unread = "".join(chr(_UNREAD + n) for n in shifts.unread())
    if not segment or shifts == DEFAULT:
        return unread + text
    national = shifts.locking in LOCKING and LOCKING[shifts.locking] is not GSM_BASIC_BY_CODE
    return unread + chr(_LOCKED + (shifts.locking if national else 0)) + text


def note(languages: tuple[int, ...] | list[int]) -> str:
    """What the mail of a text read with the default tables in place of `languages`' says of it."""
    return _said(_names(languages))


def _names(languages: tuple[int, ...] | list[int]) -> str:
    return ", ".join(LANGUAGES[n] if n < len(LANGUAGES) else f"unknown, id {n}" for n in languages)


def _said(names: str) -> str:
    return f"The SMS used a national alphabet not supported here ({names}): some letters may be wrong"


def unread(text: str) -> tuple[str, tuple[int, ...]]:
    """A text (whole, or its segments' as stored) without its markers of tables not here, and their
    languages: the store keeps the text as the phone wrote it, for opt-out words, passwords and the
    bill, and the languages beside it (`unread_note`), for the mail alone."""
    found = UNREAD_ANY.findall(text)
    if not found:
        return text, ()
    return UNREAD_ANY.sub("", text), tuple(dict.fromkeys(ord(m) - _UNREAD for m in found))


def unread_note(languages: tuple[int, ...]) -> str | None:
    """The store's word for an MO read with the default tables in place of `languages`' (None: none)."""
    return UNREAD_NOTE + _names(languages) if languages else None


def mail_note(stored: str | None) -> str | None:
    """What the mail says of an MO the store noted so (`unread_note`); None for any other note."""
    if not stored or not stored.startswith(UNREAD_NOTE) or len(stored) == len(UNREAD_NOTE):
        return None
    return _said(stored[len(UNREAD_NOTE) :])


def mend(text: str) -> str:
    """Joined segments: an ESC that ended one read with the first character of the next, by the tables
    each was read with; the markers of tables not here (said beside the text: `unread`) and of
    national locking tables dropped."""
    if UNREAD_ANY.search(text) is not None:
        text = UNREAD_ANY.sub("", text)
    if _EDGE_ESCAPED.search(text) is not None:
        text = _EDGE_ESCAPED.sub(_mend_escape, text)
    return _LOCKED_ANY.sub("", text) if _LOCKED_ANY.search(text) is not None else text


def _mend_escape(m: re.Match[str]) -> str:
    """The next segment's first character back to its code through the locking table it was read with
    (its marker), and that code read from the single shift table of the segment the ESC ended (the
    default one's for U+10F7FF). A segment without the marker was stored by 0.2.25 (a long SMS half
    received at the upgrade), which read it with the ESC's language's locking table where it has one:
    that table first, then the default one, as 0.2.25 joined it (the default alone read Portuguese
    ESC 0x12, "Φ", as "ª": nine codes in all)."""
    single = 0 if m[3] else ord(m[1]) - _EDGE_ESC
    locked = m[2] or m[4]
    ch = m[5]
    if not ch:
        return " "  # 23.038: an ESC with nothing after it shows as a space
    if locked:
        tables = (LOCKING.get(ord(locked) - _LOCKED, GSM_BASIC_BY_CODE),)
    else:  # a part 0.2.25 stored (no marker): its order, the ESC's language's locking table first
        tables = (LOCKING.get(single, GSM_BASIC_BY_CODE), GSM_BASIC_BY_CODE)
    for table in tables:
        code = next((c for c, known in table.items() if known == ch and c != 0x1B), None)
        if code is not None:
            return SINGLE.get(single, GSM_EXTENSION_BY_CODE).get(code, ch)
    return ch
