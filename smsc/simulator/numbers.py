"""What a phone and an SMSC do with texts and numbers: an MO text cut into segments as a phone cuts
it (or into exactly N for reassembly tests), parts numbered in a chosen order, and an SMPP destination
read by its TON/NPI into E.164. Shared by the simulator's SMPP and CIMD2 servers and its control port.
"""

from __future__ import annotations

import random
from typing import Any

import phonenumbers

from smsc.encoding import Coding, EmptyText, plan


def mo_segments(text: str, parts: int | None = None) -> list[tuple[int, bytes]]:
    """(data_coding, payload) of each segment of an MO text, as a phone splits it, or cut into
    exactly `parts` segments (for demos and tests of reassembly), all in the one coding a phone
    chooses for the whole text: each piece encoded alone mixed GSM and UCS-2 parts in one MO, which
    no phone sends. ValueError when that cannot be done; EmptyText for an empty text (sent as one
    empty SMS)."""
    whole = plan(text, max_parts=255, as_written=True)
    if parts is None:
        return [(int(whole.coding), part.payload) for part in whole.parts]
    if not 1 <= parts <= 255:
        raise ValueError("parts must be 1 to 255")
    if len(text) < parts:
        raise ValueError(f"a text of {len(text)} characters cannot make {parts} parts")
    size, extra = divmod(len(text), parts)
    pieces, at = [], 0
    for i in range(parts):
        n = size + (1 if i < extra else 0)
        pieces.append(text[at : at + n])
        at += n
    out = []
    for piece in pieces:
        if whole.coding == Coding.UCS2:
            payload = piece.encode("utf-16-be", "surrogatepass")
            if len(payload) > 140:
                raise ValueError(f"the text is too long for {parts} parts")
            out.append((int(Coding.UCS2), payload))
            continue
        try:
            p = plan(piece, max_parts=1, as_written=True)
        except EmptyText:  # a piece of blanks: send it as it is
            out.append((0, piece.encode("ascii", "replace")))
            continue
        if p.truncated:
            raise ValueError(f"the text is too long for {parts} parts")
        out.append((int(p.coding), p.parts[0].payload))
    return out


def numbered(items: list[Any], *, shuffle: bool = False) -> list[tuple[int, Any]]:
    """(seq, item) from 1; shuffled into an order other than the natural one when asked."""
    out = list(enumerate(items, 1))
    if shuffle and len(out) > 1:
        natural = list(out)
        while out == natural:
            random.shuffle(out)
    return out


TON_INTERNATIONAL, TON_NATIONAL, TON_SUBSCRIBER, TON_ALPHANUMERIC = 1, 2, 4, 5
NPI_E164 = 1


def destination_number(address: str, ton: int, npi: int, region: str) -> str:
    """The E.164 form ("+digits") of an SMPP destination, read by its TON/NPI as an SMSC does:
    national and subscriber numbers in the simulator's region, an unknown TON by its "00"/"+" prefix
    or else as national. What is not a number of the phone plan (NPI other than unknown or E.164,
    short codes, alphanumerics) is kept as sent."""
    digits = address.removeprefix("+")
    if ton == TON_ALPHANUMERIC or npi not in (0, NPI_E164) or not digits.isdigit():
        return address
    if ton == TON_INTERNATIONAL or address.startswith("+"):
        return "+" + digits
    if ton == 0 and digits.startswith("00"):
        return "+" + digits[2:]
    if ton in (0, TON_NATIONAL, TON_SUBSCRIBER):
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if ton == 0:  # no national number: the digits carry their country code, as we send them
            return "+" + digits
    return digits
