"""What the simulated SMSC writes into a CIMD2 deliver message (20) carrying an MO: GSM text in 033,
else UCS-2 in 034 with its data coding, and a concatenation UDH for a text of several parts. A sender
that is a number goes in 023 (an address: digits and "+"), any other ("ORANGE") in 027, the
alphanumeric originating address, in the CIMD character set as 033: letters in 023 made Kannel warn
of each such MO, and hid from our link's tests that a real SMSC writes them in 027.
"""

from __future__ import annotations

import re
from datetime import datetime

from smsc.cimd2.packet import P, cimd_encode, septets_to_cimd
from smsc.cimd2.times import format_time
from smsc.encoding import Coding, EmptyText, concat_udh
from smsc.simulator.numbers import mo_segments, numbered

_ADDRESS = re.compile(r"\+?[0-9]*")  # what 023 may carry; an empty sender stays an empty 023


def originator(source: str) -> tuple[int, str]:
    """The parameter that carries an MO's sender: 023 for a number, else 027. A sender with a
    character of no GSM code is written as it is, as a sloppy SMSC would."""
    if _ADDRESS.fullmatch(source):
        return (P.ORIGINATOR, source)
    try:
        return (P.ALPHA_ORIGINATOR, cimd_encode(source))
    except ValueError:
        return (P.ALPHA_ORIGINATOR, source)


def mo_params(
    source: str,
    destination: str,
    text: str,
    ref: int,
    now: datetime,
    parts: int | None = None,
    shuffle: bool = False,
) -> list[list[tuple[int, str | int]]]:
    """The parameters of each deliver message (20) carrying `text`: 033 for GSM text, else UCS-2 in 034."""
    try:
        segments = mo_segments(text, parts)
    except EmptyText:
        return [
            [
                (P.DESTINATION, destination),
                originator(source),
                (P.SCTS, format_time(now)),
                (P.USER_DATA, ""),
            ]
        ]
    out = []
    for seq, (coding, payload) in numbered(segments, shuffle=shuffle):
        params: list[tuple[int, str | int]] = [
            (P.DESTINATION, destination), originator(source), (P.SCTS, format_time(now)),
        ]  # fmt: skip
        if coding == Coding.UCS2:
            params.append((P.DCS, 8))
        if len(segments) > 1:
            params.append((P.UDH, concat_udh(ref, len(segments), seq).hex().upper()))
        if coding == Coding.UCS2:
            params.append((P.USER_DATA_BINARY, payload.hex().upper()))
        else:
            params.append((P.USER_DATA, septets_to_cimd(payload)))
        out.append(params)
    return out
