"""What the simulated SMSC refuses in a submit_sm that parses but cannot be an SMS, as an SMSC's
own checks do: it took them all, so a client's encoder bug (a UCS-2 text cut inside a character, a
user data header longer than the message) showed first on a real operator's link.

- a destination that is not a number ("+" and digits): 0x0B ESME_RINVDSTADR;
- UDHI set and a header length running past the message (or no message): 0x01 ESME_RINVMSGLEN;
- UCS-2 (data_coding 8) whose text after the header is an odd number of octets: 0x01.
What an SMSC leaves to the phone (a concatenation IE numbering part 5 of 2, GSM octets above 0x7F)
is taken as before. The protocol-neutral rules (reject suffixes) stay the core's.
"""

from __future__ import annotations

import re

from smsc.smpp.codec import ShortMessage

ESME_RINVMSGLEN, ESME_RINVDSTADR = 0x01, 0x0B
UDHI = 0x40
UCS2 = 8
_NUMBER = re.compile(r"\+?[0-9]+")


def refusal(pdu: ShortMessage) -> tuple[int, str] | None:
    """(command_status, why) for a submit_sm the SMSC refuses; None when it goes on to the core."""
    if not _NUMBER.fullmatch(pdu.destination_addr):
        return ESME_RINVDSTADR, "the destination is not a number"
    data = pdu.short_message or pdu.message_payload or b""
    header = 0
    if pdu.esm_class & UDHI:
        if not data or data[0] + 1 > len(data):
            return ESME_RINVMSGLEN, "the user data header runs past the message"
        header = data[0] + 1
    if pdu.data_coding == UCS2 and (len(data) - header) % 2:
        return ESME_RINVMSGLEN, "UCS-2 text of an odd number of octets"
    return None
