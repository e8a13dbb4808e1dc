"""What the simulated SMSC writes into a deliver_sm: the receipt text of a DLR (the SMPP 3.4
appendix B layout, which is what the gateway's fast receipt reader expects), the parts of an MO and
the address fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smsc.base import ReportStatus
from smsc.encoding import EmptyText, concat_udh
from smsc.simulator.numbers import mo_segments, numbered
from smsc.simulator.receipts import FINAL_STATES, Detail
from smsc.smpp.pdu import source_address

RECEIPT_STATES = {ReportStatus.DELIVERED: ("DELIVRD", 2), ReportStatus.FAILED: ("UNDELIV", 5),
                  ReportStatus.PENDING: ("ENROUTE", 1)}  # fmt: skip


def receipt_text(
    message_id: str,
    status: ReportStatus,
    submitted_at: datetime,
    done_at: datetime,
    detail: Detail | None = None,
) -> str:
    """The receipt's text; `detail` names a chosen final state and err: (`receipts`)."""
    stat, _ = RECEIPT_STATES[status]
    ok = status is ReportStatus.DELIVERED
    err = "000" if ok else "001"
    if detail is not None:
        stat, err = FINAL_STATES[detail[0]].stat, f"{detail[1]:03d}"
    return (
        f"id:{message_id} sub:001 dlvrd:{'001' if ok else '000'} "
        f"submit date:{submitted_at.astimezone(UTC):%y%m%d%H%M} "
        f"done date:{done_at.astimezone(UTC):%y%m%d%H%M} "
        f"stat:{stat} err:{err} text:"
    )


def mo_parts(
    text: str, ref: int, parts: int | None = None, shuffle: bool = False
) -> list[tuple[int, int, bytes]]:
    """(esm_class, data_coding, short_message) for each deliver_sm of an MO text."""
    try:
        segments = mo_segments(text, parts)
    except EmptyText:
        return [(0, 0, b"")]
    if len(segments) == 1:
        return [(0, *segments[0])]
    total = len(segments)
    return [
        (0x40, dc, concat_udh(ref, total, i) + payload)
        for i, (dc, payload) in numbered(segments, shuffle=shuffle)
    ]


def address_fields(source: str, destination: str) -> dict[str, Any]:
    """The six address fields of a deliver_sm from `source` to `destination`, TON/NPI as sent."""
    src_ton, src_npi, src = source_address(source)
    dst_ton, dst_npi, dst = source_address(destination)
    return {"source_addr_ton": src_ton, "source_addr_npi": src_npi, "source_addr": src,
            "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi, "destination_addr": dst}  # fmt: skip
