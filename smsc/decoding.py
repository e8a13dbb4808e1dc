"""Received user data to text: the DCS's alphabet, packed septets, and characters a phone cut
between two segments of a long MO (kept as markers until the segments are joined).

8-bit data (SMPP data_coding 2 or 4, a DCS of the 8-bit class) is no alphabet: read as Latin-1, a
phone's binary SMS lost its bytes to the mail body's control filter and reached the user as "(the
SMS was empty)". Octets that read as text (a vCard or vCalendar a phone sends to port 9204/9205,
UTF-8 or Latin-1) are that text; any others are said to be binary, with their bytes in hex. A
segment's octets are kept as markers until the join, so that a long one is judged (and a UTF-8
character cut between two segments read) whole.

The reverse of `smsc.encoding`, with the GSM tables of `smsc.gsmalphabet`; SMPP and CIMD2 MOs both come here.
"""

from __future__ import annotations

import codecs
import re

from smsc.base import Concat
from smsc.encoding import Coding, parse_udh
from smsc.gsmalphabet import GSM_BASIC_TABLE, GSM_EXTENSION_TABLE, gsm_decode, non_gsm_chars
from smsc.gsmshifts import DEFAULT, Shifts, marked, shifts_of
from smsc.gsmshifts import decode as shifted_decode
from smsc.gsmshifts import mend as mend_shifts

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
# A segment's 8-bit octets: U+10F600 + octet, rendered by `mend_edges` run by run (`octets_text`).
_OCTET = 0x10F600
_OCTET_RUN = re.compile("[\U0010f600-\U0010f6ff]+")
# The octet a UCS-2 segment ended in, past its last whole code unit: U+FFF00 + octet (plane 15's
# private use area), for `mend_edges` to join the segments' octets before reading them.
_ODD = 0xFFF00
ODD_ANY = re.compile("[\U000fff00-\U000fffff]")
# Characters a phone sent that would read as those markers (or `smsc.gsmshifts`' from U+10F400) once
# joined or stored: private use (no meaning a mail reader could show), and "Kod: \U0010f641\U0010f642
# ok" across two segments came out "Kod: AB ok".
_MARKER_LIKE = re.compile("[\U000fff00-\U000fffff\U0010f400-\U0010ffff]")
_CONTINUATION = bytes(range(0x80, 0xC0))
# 23.040 9.2.3.24's information elements a damaged UDH may start with: concatenation, special SMS
# indication, application ports, SMSC control, EMS (0x0A-0x1F), language shifts (0x24, 0x25).
_UDH_IEIS = frozenset([0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0x08, *range(0x0A, 0x20), 0x24, 0x25])


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
    if 0xC0 <= data_coding <= 0xEF:  # message waiting groups: GSM, but UCS-2 from 0xE0
        return Coding.GSM7 if data_coding <= 0xDF else Coding.UCS2
    if 0xF0 <= data_coding <= 0xFF:
        return None if data_coding & 0x04 else Coding.GSM7
    return None


def _is_octets(data_coding: int, *, smpp: bool) -> bool:
    """Whether the DCS says 8-bit data (or compressed text, which nothing here can read): no
    alphabet, so its octets are judged by `octets_text`. SMPP's own codes below 0x10 are character
    sets (IA5, Latin-1, JIS, Cyrillic...) but 2 and 4, its binary; from 0x10 they are 23.038's."""
    if smpp and data_coding < 0x10:
        return data_coding in (2, 4)
    if data_coding <= 0x7F:
        return bool(data_coding & 0x20) or (data_coding >> 2) & 3 == 1
    return 0xF0 <= data_coding and bool(data_coding & 0x04)


def decode_user_data(
    data: bytes,
    data_coding: int,
    *,
    udhi: bool = False,
    segment: bool = False,
    smpp: bool = True,
    shifts: Shifts = DEFAULT,
) -> tuple[str, Concat | None]:
    """Text and concat info of received user data (unpacked GSM, UTF-16BE or octets). Never raises.

    In a segment of a long text (a concat in the UDH, or `segment` for one the SAR TLVs number) a
    character cut at either edge is kept as a marker for `mend_edges`. `smpp` reads `data_coding` as
    SMPP's table; False reads it as a bare GSM 03.38 DCS, as CIMD2's 030 is. GSM text is read with
    the national shift tables its UDH names, or `shifts` where the UDH came apart (CIMD2's 032)."""
    concat = None
    if udhi and udh_fits(data):
        end = 1 + data[0]
        concat = parse_udh(data[:end])
        shifts = shifts_of(data[:end])
        data = data[end:]
    elif udhi and _damaged_udh(data):
        return damaged_text(bytes(data)), None
    # Any other UDH that does not fit is no UDH (UDHI set by mistake): its bytes are the text.
    segment = segment or (concat is not None and concat.total > 1)  # a set of one is whole
    if _is_octets(data_coding, smpp=smpp):
        if segment:
            return "".join(chr(_OCTET + b) for b in data), concat
        return octets_text(bytes(data)), concat
    alphabet = _alphabet(data_coding, smpp=smpp)
    if alphabet is Coding.GSM7:
        return gsm_text(data, shifts, segment=segment), concat
    if alphabet is Coding.UCS2:
        return _decode_ucs2(bytes(data), edges=segment), concat
    return bytes(data).decode("latin-1"), concat


def gsm_text(data: bytes, shifts: Shifts = DEFAULT, *, segment: bool = False) -> str:
    """Unpacked septets with the tables `shifts` names; one that names tables not here is read with
    the default ones, marked so for the store (`smsc.gsmshifts.marked`). A segment with octets above
    0x7F (an SMSC's 8-bit text) keeps them as 8-bit data's, read whole at the join: UTF-8 cut there."""
    if segment and not bytes(data).isascii():
        text = "".join(chr(_OCTET + b) for b in data)
    elif segment and _ends_in_escape(data):
        text = shifted_decode(data[:-1], shifts) + (shifts.edge_escape() or EDGE_ESC)
    else:
        text = shifted_decode(data, shifts)
    return marked(text, shifts, segment=segment)


def udh_fits(data: bytes) -> bool:
    """Whether user data flagged as starting with a UDH has room for the length its first octet gives.
    One that does not is either damaged (`_damaged_udh`: mailed with a note and its bytes) or no UDH
    at all (a phone or SMSC set UDHI by mistake): then `decode_user_data` reads the whole as text."""
    return bool(data) and 1 + data[0] <= len(data)


def _damaged_udh(data: bytes) -> bool:
    """Whether data whose UDH does not fit starts like a UDH cut short rather than like text: a length
    no text starts with (a control in every octet alphabet) before an element 23.040 defines, or a
    concatenation or port element with its own length. Read as text, its header came out as "Ç@¥"."""
    if not data or udh_fits(data) or data[0] < 2:
        return False
    if len(data) < 2:
        return data[0] < 0x20
    iei = data[1]
    if len(data) >= 3 and {0x00: 3, 0x08: 4, 0x04: 2, 0x05: 4}.get(iei) == data[2]:
        return True
    return data[0] < 0x20 and iei in _UDH_IEIS


def damaged_text(data: bytes) -> str:
    """What a user is shown of user data whose header runs past its end: that it came damaged, and
    its bytes, instead of the header's octets read as letters."""
    said = f"its header (UDH) claims {data[0]} octets after the first, the SMS holds only {len(data) - 1}"
    return f"[The SMS came damaged: {said}; no text is left. Its {_count(len(data))} in hex:]\n{_hex(data)}"


def octets_text(data: bytes) -> str:
    """8-bit user data as a user can read it: text when it reads as text (UTF-8, else Latin-1 that is
    mostly ASCII, as a phone's vCard or vCalendar is), else a line saying it is binary, and its hex.
    Never empty for data that is not: an empty answer told the user nothing had come."""
    body = data.rstrip(b"\x00")  # NUL padding some phones add after a vCard
    if not body:
        return "" if not data else f"[A binary SMS of {_count(len(data))}, all zero.]"
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    text = _utf8(body)
    if text is not None and all(c.isprintable() or c in "\t\n\r" for c in text):
        return _MARKER_LIKE.sub("\ufffd", text)  # as in UCS-2: no marker of ours from a phone
    plain = sum(1 for b in body if 0x20 <= b < 0x7F or b in (9, 10, 13))
    if plain + sum(1 for b in body if b >= 0xA0) == len(body) and plain * 4 >= len(body) * 3:
        return body.decode("latin-1")
    return f"[A binary SMS of {_count(len(data))}, not text; in hex:]\n{_hex(data)}"


def _utf8(data: bytes) -> str | None:
    """UTF-8 text of `data`, or None. A character cut at either end (a segment missing from a long
    one) is U+FFFD, where the rest holds a character beyond ASCII: with none, the octets may as well
    be Latin-1 ending in "é", which is also how UTF-8 starts a character."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lead = len(data) - len(data.lstrip(_CONTINUATION))
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        middle = decoder.decode(data[lead:], final=False)
    except UnicodeDecodeError:
        return None
    if lead > 3 or middle.isascii():
        return None
    return "\ufffd" * bool(lead) + middle + "\ufffd" * bool(decoder.getstate()[0])


def _count(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


def _hex(data: bytes) -> str:
    """Sixteen bytes a line, spaced, as hex viewers show them."""
    return "\n".join(data[i : i + 16].hex(" ") for i in range(0, len(data), 16))


def is_ucs2(data_coding: int) -> bool:
    """Whether the DCS says UCS-2 (the same in SMPP's data_coding and CIMD2's 030)."""
    return _alphabet(data_coding, smpp=True) is Coding.UCS2


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


# A single SMS holds 140 octets; a part of a long one 6 less, for its concatenation header
# (23.040; protocols.md 3.2): in the units of each alphabet, septets, octets and UTF-16 code units.
_CAPACITY = {Coding.GSM7: (160, 153), None: (140, 134), Coding.UCS2: (70, 67)}
# What `damaged_text` and `octets_text` store in place of octets that are no text: the count and hex
# of those octets, from which the octets the phone sent are read back (`_rendered_octets`).
_RENDERED = re.compile(
    r"\[(?:A binary SMS of (\d+) bytes?, not text; in hex:\]\n|The SMS came damaged: its header \(UDH\)"
    r" claims \d+ octets after the first, the SMS holds only \d+; no text is left\. Its (\d+) bytes?"
    r" in hex:\]\n)((?:[0-9a-f]{2}[ \n])*[0-9a-f]{2})"
)
_ALL_ZERO = re.compile(r"\[A binary SMS of (\d+) bytes?, all zero\.\]")
# CIMD2's 034 that is no hex, as `smsc.cimd2.messages.unreadable_text` words it: the field's length
# says the octets it was to stand for, two characters each, which its shown start may cut.
_NOT_HEX = re.compile(
    r"\[The SMS came damaged: its binary user data \(034\) is not hex; no text is left\. The 034 as the"
    r" SMSC wrote it \((\d+) characters?\):\]\n"
)


def phone_parts(text: str, data_coding: int, *, smpp: bool = True) -> int:
    """The SMS parts a phone's split needed for a whole text that came with no concatenation: what the
    operator charged the phone for it. An SMSC that joins a long SMS itself delivers it as one, its text
    in SMPP's message_payload; counted as one part, a vote of two was billed at half its price.

    `text` is as `decode_user_data` stored it, `data_coding` and `smpp` as given to it. The alphabet is
    the one the DCS names: a UCS-2 text of GSM characters was sent as UCS-2. SMPP's own character sets
    (IA5, Latin-1, Cyrillic...) are the SMSC's conversion of what the phone sent, which was GSM when
    every character has a code there and UCS-2 otherwise, as a phone chooses. Octets read as text are
    counted as the fewer of their UTF-8 and Latin-1 readings (`_costs`). A UDH besides the concatenation
    (ports, language shifts) that a phone's split repeats in every part is not known once joined, and
    is not counted."""
    alphabet = _counted_alphabet(text, data_coding, smpp)
    single, per_part = _CAPACITY[alphabet]
    octets = _rendered_octets(text)
    if octets is not None:  # octets that are no text: counted as those octets, in the alphabet's units
        units = (octets + 1) // 2 if alphabet is Coding.UCS2 else octets
        return 1 if units <= single else -(-units // per_part)
    costs = _costs(text, alphabet)
    if sum(costs) <= single:
        return 1
    # Filled as a phone's split fills them, which never cuts an escape pair or a surrogate pair: one
    # across a boundary takes a part more than dividing the units gives (`smsc.encoding` alike).
    parts, room = 1, per_part
    for cost in costs:
        if cost > room:
            parts, room = parts + 1, per_part
        room -= cost
    return parts


def _counted_alphabet(text: str, data_coding: int, smpp: bool) -> Coding | None:
    if _is_octets(data_coding, smpp=smpp):
        return None
    alphabet = _alphabet(data_coding, smpp=smpp)
    if alphabet is not None:
        return alphabet
    return Coding.UCS2 if non_gsm_chars(text) else Coding.GSM7


def _costs(text: str, alphabet: Coding | None) -> list[int]:
    """Each character's units in the alphabet it was sent in (None: octets)."""
    if alphabet is Coding.GSM7:
        # A character outside the default tables is one septet: a national table's or an octet an SMSC
        # sent as it was. An extension character is two, as the phone's escape made it.
        return [2 if ch in GSM_EXTENSION_TABLE else 1 for ch in text]
    if alphabet is Coding.UCS2:
        return [2 if ch > "\uffff" else 1 for ch in text]
    # Octets read as text: UTF-8 (what `octets_text` tries first) or Latin-1 (its fallback) cannot be
    # told apart once stored, and the doubt is not billed: a Latin-1 SMS of 140 octets with accents,
    # counted as UTF-8, was two parts to the phone's one.
    try:
        return [1] * len(text.encode("latin-1"))
    except UnicodeEncodeError:
        return [1] * len(text.encode("utf-8", "surrogatepass"))


def _rendered_octets(text: str) -> int | None:
    """How many octets a text stored as `octets_text`'s binary or `damaged_text`'s rendering stands
    for: its hex, when that holds the count it says (or CIMD2's 034 that is no hex, by its length);
    None for any other text."""
    if (m := _ALL_ZERO.fullmatch(text)) is not None:
        return int(m[1])
    if (m := _NOT_HEX.match(text)) is not None:
        return int(m[1]) // 2
    m = _RENDERED.fullmatch(text)
    if m is None:
        return None
    octets = len(m[3]) // 3 + 1
    return octets if octets == int(m[1] or m[2]) else None


def _ends_in_escape(data: bytes) -> bool:
    """An escape whose character is not in `data` (ESC ESC pairs, reserved, count as complete)."""
    return (len(data) - len(data.rstrip(b"\x1b"))) % 2 == 1


def _decode_ucs2(data: bytes, *, edges: bool) -> str:
    """A segment (`edges`) keeps each half of a pair as a marker and an odd octet at its end as one:
    a phone may cut the UTF-16 stream of a long text at an odd octet, and read alone, every segment
    after the cut was read a byte off (garbage); `mend_edges` joins their octets (`_realigned`)."""
    text = data[: len(data) & ~1].decode("utf-16-be", "surrogatepass")
    text = _MARKER_LIKE.sub("\ufffd", text)  # before the markers of this segment's own edges
    if edges:
        text = _LONE_HALF.sub(lambda m: chr(_EDGE_HALF + ord(m[0]) - 0xD800), text)
    if len(data) & 1:
        text += chr(_ODD + data[-1]) if edges else "\ufffd"  # half a code unit, alone: nothing to mend
    return _LONE_HALF.sub("\ufffd", text)


def _realigned(text: str) -> str:
    """Joined UCS-2 segments one of which ended in an odd octet: their octets read as one stream, so
    that the odd octet costs one U+FFFD (none if a later segment's odd octet completes it)."""
    data = bytearray()
    for ch in text:
        if ODD_ANY.fullmatch(ch):
            data.append(ord(ch) - _ODD)
        elif ord(ch) >= _EDGE_HALF:
            data += (ord(ch) - _EDGE_HALF + 0xD800).to_bytes(2, "big")
        else:
            data += ch.encode("utf-16-be", "surrogatepass")
    return _decode_ucs2(bytes(data), edges=False)


def mend_edges(text: str) -> str:
    """Joined segments: characters cut at their edges made whole; a half with no other half (a
    segment missing, a phone's odd cut) becomes U+FFFD, an escape with no character a space. The
    8-bit octets of adjacent segments are read as one run (`octets_text`). National shift tables'
    markers are `smsc.gsmshifts.mend`'s: it drops those of tables not here, which the store reads
    before the join (`smsc.gsmshifts.unread`)."""
    text = mend_shifts(text)
    if ODD_ANY.search(text) is not None:
        return _realigned(text)
    if _OCTET_RUN.search(text) is not None:
        text = _OCTET_RUN.sub(lambda m: _octet_run(m, text), text)
    if _EDGE_ANY.search(text) is None:
        return text
    text = _EDGE_PAIR.sub(
        lambda m: chr(0x10000 + ((ord(m[1]) - _EDGE_HALF) << 10) + ord(m[2]) - _EDGE_HALF - 0x400), text
    )
    text = _EDGE_ESCAPED.sub(_mend_escape, text)
    return _EDGE_ANY.sub("\ufffd", text)


def _octet_run(m: re.Match[str], text: str) -> str:
    """A run of segments' octets as `octets_text` reads it; a binary one on lines of its own."""
    shown = octets_text(bytes(ord(c) - _OCTET for c in m[0]))
    if not shown.startswith("[A binary SMS"):
        return shown
    before = "\n" if m.start() and text[m.start() - 1] != "\n" else ""
    after = "\n" if m.end() < len(text) and text[m.end()] != "\n" else ""
    return before + shown + after


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
