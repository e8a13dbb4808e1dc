"""The GSM 03.38 default alphabet (3GPP TS 23.038): its basic and extension tables, and a text's
unpacked septets and back.

Kept apart from `smsc.encoding` (which plans how a text becomes SMS parts and reads these tables to
choose the alphabet and count what each character costs) because the tables are shared more widely:
`smsc.decoding` reads received septets with them, the CIMD2 driver derives its own spelling from
them, and the sender rules take the characters every SMSC reads alike. Pure, as the planner is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# 3GPP TS 23.038 default alphabet, indexed by code. 0x1B (ESC) is a placeholder: it is not a character
# anyone can send, and gsm_char_ok() must not accept it.
_BASIC_BY_CODE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_BASIC_TABLE: dict[str, int] = {ch: code for code, ch in enumerate(_BASIC_BY_CODE) if code != 0x1B}
# Handsets commonly show 0x09 as ç as well, and Kannel maps both; sending ç as UCS-2 would cost 90 chars.
GSM_BASIC_TABLE["ç"] = 0x09
GSM_EXTENSION_TABLE: dict[str, int] = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_GSM_CHARS = frozenset(GSM_BASIC_TABLE) | frozenset(GSM_EXTENSION_TABLE)
_EXTENSION_CHARS = frozenset(GSM_EXTENSION_TABLE)
# str.translate + latin-1 encode runs in C; one dict lookup per character is the cheapest mapping we have.
_ENCODE = {ord(ch): chr(code) for ch, code in GSM_BASIC_TABLE.items()} | {
    ord(ch): "\x1b" + chr(code) for ch, code in GSM_EXTENSION_TABLE.items()
}
_NON_GSM = re.compile("[^" + "".join(re.escape(ch) for ch in sorted(_GSM_CHARS)) + "]")
# An SMSC reading data_coding 0 as Latin-1 (`LinkSettings.dc0_charset`) has no euro sign and no Greek
# capitals: text with them goes UCS-2 there (`smsc.encoding.plan(latin1=True)`), not with "?" for them.
_NON_LATIN1_GSM = re.compile(
    "[^" + "".join(re.escape(ch) for ch in sorted(_GSM_CHARS) if ord(ch) < 256) + "]"
)
# `basic_septets`: every basic character becomes its code (all below 0x80), every other one (of the
# extension, ESC, a backtick, a tab) 0xFF in bytes and 0x80 in text, so that a text is basic exactly
# when the result has none. ASCII is looked up as bytes, one C loop; other text in the str tables,
# whose Latin-1 variant leaves the Greek capitals out, as `_NON_LATIN1_GSM` does.
_ASCII_SEPTETS = bytes(GSM_BASIC_TABLE.get(chr(i), 0xFF) for i in range(256))
_NOT_BASIC = {i: "\x80" for i in range(0x80)}
_BASIC = _NOT_BASIC | {ord(ch): chr(code) for ch, code in GSM_BASIC_TABLE.items()}
_BASIC_LATIN1 = _NOT_BASIC | {ord(ch): chr(code) for ch, code in GSM_BASIC_TABLE.items() if ord(ch) < 256}
# Decoding keeps bytes >= 0x80 as Latin-1 (no entry), which is what SMSCs that misuse DC 0 mean.
_DECODE = {code: ch for code, ch in enumerate(_BASIC_BY_CODE)}
_DECODE_EXTENSION = {code: ch for ch, code in GSM_EXTENSION_TABLE.items()}
# By code, for `smsc.gsmshifts`: the default tables beside the national ones a UDH may name.
GSM_BASIC_BY_CODE: Mapping[int, str] = _DECODE
GSM_EXTENSION_BY_CODE: Mapping[int, str] = _DECODE_EXTENSION
_ESCAPE_RUN = re.compile("(\x1b[\\s\\S]?)")


def gsm_char_ok(ch: str) -> bool:
    """True if `ch` has a GSM 03.38 code in the basic or extension table (ç counts as Ç)."""
    return ch in _GSM_CHARS


def non_gsm_chars(text: str) -> list[str]:
    """Distinct characters of `text` that force UCS-2, in order of first appearance."""
    return list(dict.fromkeys(_NON_GSM.findall(text)))


def gsm_encode(text: str) -> bytes:
    """Unpacked septets, extension characters as ESC + code. Raises ValueError on a non-GSM character."""
    bad = _NON_GSM.search(text)
    if bad is not None:
        raise ValueError(f"{bad.group()!r} at index {bad.start()} has no GSM 03.38 code")
    return text.translate(_ENCODE).encode("latin-1")


def basic_septets(text: str, latin1: bool = False) -> bytes | None:
    """`gsm_encode(text)` when every character is in the basic table (with `latin1`, one below 256),
    else None: one pass for the planner's common text, where a search for a character outside the
    alphabet and the encoding would be two."""
    if text.isascii():
        septets = text.encode("ascii").translate(_ASCII_SEPTETS)
        return None if b"\xff" in septets else septets
    mapped = text.translate(_BASIC_LATIN1 if latin1 else _BASIC)
    return mapped.encode("ascii") if mapped.isascii() else None


def _decode_escape(seq: str, basic: Mapping[int, str], extension: Mapping[int, str]) -> str:
    # 23.038 wants a receiver to show the base character for an escape it does not know (the locking
    # shift table's, where one is named); ESC ESC (reserved for a further table) and a trailing ESC
    # have no base, so they become a space.
    if len(seq) < 2 or seq[1] == "\x1b":
        return " "
    code = ord(seq[1])
    return extension.get(code) or basic.get(code, seq[1])


def gsm_decode(
    data: bytes, basic: Mapping[int, str] = _DECODE, extension: Mapping[int, str] = _DECODE_EXTENSION
) -> str:
    """Unpacked septets to text. Never raises: network bytes may be anything. `basic` and `extension`
    are the tables by code: a national locking and single shift table (`smsc.gsmshifts`) in their place.

    Septets are below 0x80: octets above are an SMSC passing the phone's 8-bit text on as it came. As
    UTF-8 when they read as it and like it (`utf8_likely`; "Zażółć" was mailed as "ZaÅ¼Ã³Å\x82Ä\x87"),
    else as Latin-1. A long SMS's segments keep such octets for the join (`smsc.decoding.gsm_text`)."""
    text = bytes(data).decode("latin-1")
    if not text.isascii():
        try:
            utf8 = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            utf8 = None
        if utf8 is not None and utf8_likely(utf8):
            return utf8
    if "\x1b" not in text:
        return text.translate(basic)
    pieces = _ESCAPE_RUN.split(text)
    # re.split with one capturing group alternates plain runs (even) and escape runs (odd).
    return "".join(
        _decode_escape(p, basic, extension) if i % 2 else p.translate(basic) for i, p in enumerate(pieces)
    )


def utf8_likely(text: str) -> bool:
    """Whether octets that decoded as UTF-8 to `text` were UTF-8, not Latin-1 or Latin-2 that happens
    to decode. Such text decodes only where each octet above 0x7F pairs an accented capital (0xC2-0xDF)
    with a symbol or letter of 0xA0-0xBF (0x80-0x9F are C1 controls, in no text): one character of
    U+0080-U+07FF whose last six bits are 0x20 or more. Below U+0250 that is a Latin letter or sign;
    from it, IPA, Greek, Cyrillic, Hebrew or Arabic, and the capital stood in a word of ASCII letters:
    the all-caps "STÓŁ" (D3 A3) read "STӣ", "RÓŻA" "RӯA". So: yes when a character beyond ASCII is
    no such lookalike (a Latin letter, a longer sequence, a C1-range octet: Cyrillic "Да" has 0x94),
    or one stands beside no ASCII letter (a script's own letters stand by their own: "ок"). A text
    whose every such character touches an ASCII letter is read as Latin-1: a word mixing Latin and
    another script's letters is no word, and a Polish capital word is common."""
    for i, c in enumerate(text):
        code = ord(c)
        if code < 0x80:
            continue
        if not (0x250 <= code < 0x800 and code & 0x3F >= 0x20):
            return True
        if not any(n.isascii() and n.isalpha() for n in text[max(i - 1, 0) : i] + text[i + 1 : i + 2]):
            return True
    return False
