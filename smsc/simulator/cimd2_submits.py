"""What the simulated SMSC reads from a CIMD2 submit (03): the part as the core sees it, or the 900
error code that refuses it. Apart from `cimd2_server`, which owns the session (login, answers,
deliveries), as `smpp_server._submitted` is the SMPP side of the same reading.

056, the status report request, is a bit mask (protocols.md 1.9): 1 temporary error, 2 validity
period expired, 4 delivery failed, 8 delivery successful, 16 cancelled, 32 deleted. Any of 2, 4, 8
asked for a report of either outcome; now a mask with the failure bits and not 8 asks for failures
only (SMPP's registered_delivery 2), and one with 8 alone for a successful delivery only.
"""

from __future__ import annotations

import contextlib

from smsc.cimd2.packet import P, Packet, address_digits, cimd_decode, text_to_septets
from smsc.decoding import decode_user_data
from smsc.simulator.numbers import destination_number
from smsc.simulator.submitted import SubmittedSms

REPORT_EXPIRED, REPORT_FAILED, REPORT_DELIVERED = 2, 4, 8
REPORT_FAILURES = REPORT_EXPIRED | REPORT_FAILED


def submitted_sms(packet: Packet, system_id: str, region: str) -> SubmittedSms | int:
    """The part as the core sees it, or the 900 error code that refuses it."""
    destinations = packet.get_all(P.DESTINATION)
    if not destinations or not address_digits(destinations[0]):
        return 300
    if len(destinations) > 1:
        return 301
    to = "+" * destinations[0].startswith("+") + address_digits(destinations[0])  # without any "-"
    text_data, binary = packet.get(P.USER_DATA), packet.get(P.USER_DATA_BINARY)
    if text_data is not None and binary is not None:
        return 303
    data_coding = packet.get_int(P.DCS) or 0
    try:
        udh = bytes.fromhex(packet.get(P.UDH) or "")
        payload = bytes.fromhex(binary) if binary is not None else b""
    except ValueError:
        return 302
    if binary is not None:
        text, _ = decode_user_data(payload, data_coding)
    else:
        text = cimd_decode(text_data or "")
        with contextlib.suppress(ValueError):
            payload = text_to_septets(text)
    mask = packet.get_int(P.STATUS_REPORT_REQUEST) or 0
    return SubmittedSms(
        protocol="cimd2", system_id=system_id,
        source=packet.get(P.ORIGINATOR) or packet.get(P.ALPHA_ORIGINATOR) or "",
        # No TON on CIMD2: read as SMPP's unknown one, "601…" in the region, "0048…" without its 00.
        destination=destination_number(to, 0, 0, region), data_coding=data_coding, udh=udh,
        text=text, payload=payload,
        want_report=bool(mask & (REPORT_FAILURES | REPORT_DELIVERED)),
        failure_report_only=not mask & REPORT_DELIVERED,
        success_report_only=not mask & REPORT_FAILURES,
        validity=packet.get(P.VALIDITY_RELATIVE) or packet.get(P.VALIDITY_ABSOLUTE) or "",
    )  # fmt: skip
