"""Received user data to text: the DCS's alphabet, packed septets, and characters a phone cut
between two segments of a long MO (kept as markers until the segments are joined).

The reverse of `smsc.encoding`, whose GSM tables it reads; SMPP and CIMD2 MOs both come here.
"""

from __future__ import annotations

import re

from smsc.base import Concat
from smsc.encoding import GSM_BASIC_TABLE, Coding, gsm_decode, parse_udh

# A character cut in two by the edge between two segments of a long MO (a phone may cut a surrogate
# pair or an escape sequence): segments are decoded and stored one by one, so a cut half is kept as
# a marker SQLite can store (it refuses a lone surrogate) and made whole by `mend_edges` once the
# segments are joined. Plane 16's private use area: U+10F800 + (UTF-16 unit - 0xD800) for a half,
# U+10F7FF for an escape that ended a segment.
_EDGE_HALF = 0x10F800
EDGE_ESC = "\U0010f7ff"
_EDGE_PAIR = re.compile("([\U0010f800-\U0010fbff])([\U0010fc00-\U0010ffff])")
_EDGE_ESCAPED = re.compile("\U0010f7ff([\\s\\S]?)")
_EDGE_ANY = re.compile("[\U0010f7ff-\U0010ffff]")
_LONE_HALF = re.compile("[\ud800-\udfff]")


def _alphabet(data_coding: int, *, smpp: bool) -> Coding | None:
    """GSM 03.38 DCS groups to an alphabet; None means octets, read as Latin-1."""
    if smpp and data_coding in (1, 2, 3):
        # SMPP's data_coding defines these as IA5, binary and Latin-1, where the DCS rule says GSM.
        # CIMD2's 030 is the DCS itself (protocols.md 1.10): there 1-3 are the GSM alphabet.
        return None
    if 0 <= data_coding <= 0x7F:
        if data_coding & 0x20:  # compressed: nothing we can decode
            return None
        return {0: Coding.GSM7, 2: Coding.UCS2}.get((data_coding >> 2) & 3)
    if 0xC0 <= data_coding <= 0xDF:
        return Coding.GSM7
    if 0xE0 <= data_coding <= 0xEF:
        return Coding.UCS2
    if 0xF0 <= data_coding <= 0xFF:
        return None if data_coding & 0x04 else Coding.GSM7
    return None


def decode_user_data(
    data: bytes, data_coding: int, *, udhi: bool = False, segment: bool = False, smpp: bool = True
) -> tuple[str, Concat | None]:
    """Text and concat info of received user data (unpacked GSM, UTF-16BE or octets). Never raises.

    In a segment of a long text (a concat in the UDH, or `segment` for one the SAR TLVs number) a
    character cut at either edge is kept as a marker for `mend_edges`. `smpp` reads `data_coding` as
    SMPP's table; False reads it as a bare GSM 03.38 DCS, as CIMD2's 030 is."""
    concat = None
    if udhi and udh_fits(data):  # one that does not fit is no UDH: its bytes are the text
        end = 1 + data[0]
        concat = parse_udh(data[:end])
        data = data[end:]
    segment = segment or concat is not None
    alphabet = _alphabet(data_coding, smpp=smpp)
    if alphabet is Coding.GSM7:
        if segment and _ends_in_escape(data):
            return gsm_decode(data[:-1]) + EDGE_ESC, concat
        return gsm_decode(data), concat
    if alphabet is Coding.UCS2:
        return _decode_ucs2(bytes(data), edges=segment), concat
    return bytes(data).decode("latin-1"), concat


def udh_fits(data: bytes) -> bool:
    """Whether user data flagged as starting with a UDH has room for the length its first octet gives.
    One that does not is no UDH at all (a phone or SMSC set UDHI by mistake): the caller reads the
    whole data as text rather than lose it, as `decode_user_data` does."""
    return bool(data) and 1 + data[0] <= len(data)


def is_gsm7(data_coding: int, *, smpp: bool = True) -> bool:
    """Whether the DCS (23.038's groups) says GSM default alphabet; `smpp` as for `decode_user_data`."""
    return _alphabet(data_coding, smpp=smpp) is Coding.GSM7


def unpack_septets(data: bytes) -> bytes:
    """Packed GSM 7-bit user data (23.038 6.1.2.1.1) to one septet per byte.

    Seven octets hold eight septets; when a text of seven leaves the last seven bits spare they
    are CR (or, from careless senders, zero), which is padding, not text."""
    out = bytearray()
    carry = bits = 0
    for octet in data:
        carry |= octet << bits
        bits += 8
        while bits >= 7:
            out.append(carry & 0x7F)
            carry >>= 7
            bits -= 7
    if data and len(data) % 7 == 0 and out[-1] in (0x0D, 0x00):
        del out[-1]
    return bytes(out)


def _ends_in_escape(data: bytes) -> bool:
    """An escape whose character is not in `data` (ESC ESC pairs, reserved, count as complete)."""
    return (len(data) - len(data.rstrip(b"\x1b"))) % 2 == 1


def _decode_ucs2(data: bytes, *, edges: bool) -> str:
    text = data[: len(data) & ~1].decode("utf-16-be", "surrogatepass")
    if len(data) & 1:
        text += "\ufffd"  # half a code unit: cut in the network, nothing to mend
    elif edges and text and "\ud800" <= text[-1] <= "\udbff":
        text = text[:-1] + chr(_EDGE_HALF + ord(text[-1]) - 0xD800)
    if edges and text and "\udc00" <= text[0] <= "\udfff":
        text = chr(_EDGE_HALF + ord(text[0]) - 0xD800) + text[1:]
    return _LONE_HALF.sub("\ufffd", text)


def mend_edges(text: str) -> str:
    """Joined segments: characters cut at their edges made whole; a half with no other half (a
    segment missing, a phone's odd cut) becomes U+FFFD, an escape with no character a space."""
    if _EDGE_ANY.search(text) is None:
        return text
    text = _EDGE_PAIR.sub(
        lambda m: chr(0x10000 + ((ord(m[1]) - _EDGE_HALF) << 10) + ord(m[2]) - _EDGE_HALF - 0x400), text
    )
    text = _EDGE_ESCAPED.sub(_mend_escape, text)
    return _EDGE_ANY.sub("\ufffd", text)


def _mend_escape(m: re.Match[str]) -> str:
    """An escape that ended a segment with the first character of the next: as `_decode_escape`."""
    ch = m[1]
    code = GSM_BASIC_TABLE.get(ch)
    if code is None:
        return ch or " "
    return gsm_decode(bytes((0x1B, code)))


# --- planning -------------------------------------------------------------------------------------
# Positions are indices into the text (code points); cum[i] is the number of units before index i, so
# a split can only fall between whole characters and thus never inside an ESC pair or surrogate pair.
