"""What a claimed part is handed to its link as: the stored part, its validity as the SMSC's
absolute time (the part's own end, so that an SMSC never keeps it past what its sender was told)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.store.records import ClaimedPart
from smsc.base import OutboundSms


def outbound(part: ClaimedPart) -> OutboundSms:
    return OutboundSms(
        part_id=part.id,
        source=part.source,
        destination=part.destination,
        data_coding=part.data_coding,
        payload=part.payload,
        text=part.text,
        udh=part.udh,
        validity=datetime.fromtimestamp(part.expires_at, UTC),
    )
