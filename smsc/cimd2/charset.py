"""The CIMD character set for user data (033, protocols.md 1.11): GSM 03.38 codes written as plain
ASCII where the glyph matches and as `_xy` combinations where it does not. The GSM tables themselves
belong to `smsc.encoding`; this module only derives the CIMD spelling from them, so that the alphabet
the SMTP side plans parts with and the one this link sends can never disagree.
"""

from __future__ import annotations

from smsc.decoding import EDGE_ESC
from smsc.gsmalphabet import GSM_BASIC_TABLE, GSM_EXTENSION_TABLE, gsm_encode
from smsc.gsmshifts import DEFAULT, Shifts

ESC = 0x1B


def _basic_by_code() -> str:
    # GSM_BASIC_TABLE also maps ç to 0x09, after Ç: the first character seen for a code is its glyph.
    by_code: dict[int, str] = {ESC: "\x1b"}
    for ch, code in GSM_BASIC_TABLE.items():
        by_code.setdefault(code, ch)
    return "".join(by_code[code] for code in range(128))


# Indexed by GSM code; 0x1B (ESC) is a placeholder, not a character.
GSM_BASIC = _basic_by_code()
GSM_EXTENSION: dict[int, str] = {code: ch for ch, code in GSM_EXTENSION_TABLE.items()}
_CIMD_SPECIAL = {
    0x00: "_Oa", 0x01: "_L-", 0x02: "$", 0x03: "_Y-", 0x04: "_e`", 0x05: "_e'", 0x06: "_u`", 0x07: "_i`",
    0x08: "_o`", 0x09: "_C,", 0x0B: "_O/", 0x0C: "_o/", 0x0E: "_A*", 0x0F: "_a*", 0x10: "_gd", 0x11: "_--",
    0x12: "_gf", 0x13: "_gg", 0x14: "_gl", 0x15: "_go", 0x16: "_gp", 0x17: "_gi", 0x18: "_gs", 0x19: "_gt",
    0x1A: "_gx", 0x1B: "_XX", 0x1C: "_AE", 0x1D: "_ae", 0x1E: "_ss", 0x1F: "_E'", 0x22: "_qq", 0x24: "_ox",
    0x40: "_!!", 0x5B: '_A"', 0x5C: '_O"', 0x5D: "_N~", 0x5E: '_U"', 0x5F: "_so", 0x60: "_??", 0x7B: '_a"',
    0x7C: '_o"', 0x7D: "_n~", 0x7E: '_u"', 0x7F: "_a`",
}  # fmt: skip
# Every other GSM code has the same glyph as the ASCII byte of the same value and is sent plainly.
GSM_TO_CIMD = [_CIMD_SPECIAL.get(code, chr(code)) for code in range(128)]
_COMBO_TO_GSM = {s[1:]: code for code, s in _CIMD_SPECIAL.items() if s.startswith("_")}
# Legacy 7-bit Nordic readings that Kannel applies to plain bytes on receive.
_PLAIN_TO_GSM = {"@": 0x00, "$": 0x02, "]": 0x0E, "}": 0x0F}

# Unicode → unpacked GSM 03.38 codes (extension characters as ESC + code), ç sent as 0x09 as Kannel
# does; ValueError if a character has no GSM code.
text_to_septets = gsm_encode


def septets_to_cimd(septets: bytes) -> str:
    """Unpacked GSM codes → the CIMD text that goes into 033."""
    if any(b > 0x7F for b in septets):
        raise ValueError("GSM septets must be below 0x80")
    return "".join(GSM_TO_CIMD[b] for b in septets)


def cimd_encode(text: str) -> str:
    return septets_to_cimd(text_to_septets(text))


def cimd_decode(value: str, *, segment: bool = False, shifts: Shifts = DEFAULT) -> str:
    """033 as received → Unicode, never failing: combinations and plain bytes as Kannel reads them,
    bytes ≥ 0x80 as ISO-8859-1, an unknown `_xy` kept as written. In a segment of a long text an
    escape ending it is kept as `EDGE_ESC`: its character starts the next segment. The codes are
    read with the national shift tables the UDH (032) names (`smsc.gsmshifts`)."""
    basic, extension = (GSM_BASIC, GSM_EXTENSION) if shifts == DEFAULT else shifts.tables()
    out: list[str] = []
    escaped = False
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        code: int | None = None
        if ch == "_" and value[i + 1 : i + 3] in _COMBO_TO_GSM:
            code = _COMBO_TO_GSM[value[i + 1 : i + 3]]
            i += 3
        else:
            i += 1
            if ch in _PLAIN_TO_GSM:
                code = _PLAIN_TO_GSM[ch]
            elif ord(ch) < 0x80 and ch != "_":
                code = ord(ch)
        if escaped:
            escaped = False
            if code is None:
                out.append(ch)
            elif code == ESC:
                out.append(" ")  # ESC ESC has no meaning; 23.038 suggests a space
            else:
                out.append(extension.get(code) or basic[code])
        elif code == ESC:
            escaped = True
        else:
            out.append(ch if code is None else basic[code])
    if escaped and segment:
        out.append(shifts.edge_escape() or EDGE_ESC)
    return "".join(out)
