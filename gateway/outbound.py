"""What a claimed part is handed to its link as: the stored part, its validity as the SMSC's
absolute time (the part's own end, so that an SMSC never keeps it past what its sender was told)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.store.records import ClaimedPart
from smsc.base import OutboundSms
from smsc.makers import maker

# OutboundSms(part_id, source, destination, data_coding, payload, text, udh, validity, want_report)
# by position without its frozen __init__ (`smsc.makers`): one a send of a part.
_outbound = maker(OutboundSms)


def outbound(part: ClaimedPart) -> OutboundSms:
    return _outbound(
        part.id,
        part.source,
        part.destination,
        part.data_coding,
        part.payload,
        part.text,
        part.udh,
        datetime.fromtimestamp(part.expires_at, UTC),
        True,
    )
