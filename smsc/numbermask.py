"""Phone numbers out of log lines: a log keeps none, as it keeps no SMS text, so that `smsgw phone forget`
leaves no number behind in the journal. Plain code importing nothing of smsc or the gateway: the CIMD2
link masks the SMSC's words with it, and so do the gateway's outcome lines and the store's settling lines,
which quote the same words (the store may import no driver: `tests/test_architecture.py`)."""

from __future__ import annotations

import re

# A run of digits that could be a phone number in free text: five digits or more (no error code, short
# code or count of the texts), a "+" before them and up to two separators between them allowed, so that
# "+48 (601) 123-456" goes whole rather than in pieces each too short to be masked.
_NUMBER_RUN = re.compile(r"\+?\d(?:[ \-./()]{0,2}\d){4,}")


def masked(value: str) -> str:
    """How a log shows a phone number or a sender: by its length only, as `Packet.describe` does."""
    return f"<{len(value)} chars>"


def without_numbers(text: str) -> str:
    """`text` with every digit run that could be a phone number `masked`: for a log line quoting the
    SMSC's own words (CIMD2's 901 ERROR_TEXT, an SMPP SMSC's text), which name the destination as often
    as not ("Destination 48601123456 barred"). The part's stored reason keeps them whole; only the
    journal loses them."""
    return _NUMBER_RUN.sub(lambda m: masked(m.group()), text)
