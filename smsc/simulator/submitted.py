"""What the simulator's protocol servers and its core hand each other: a received part, the answer to
it, and the session a report or MO goes out by.

Apart from `smsc.simulator.core` so that the servers, the part log and tests name these types
without the core's state; the core imports them, and they stay importable from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from smsc.base import ReportStatus
from smsc.cimd2.times import validity_end
from smsc.simulator.receipts import Detail
from smsc.smpp.pdu import read_smpp_time


@dataclass(frozen=True)
class SubmittedSms:
    """One received part. `destination` is E.164 with "+" (the wire has digits only); `source` is as
    the client sent it. The fields after `text` are protocol details, kept for tests and the log."""

    protocol: str  # "smpp" | "cimd2"
    system_id: str
    source: str
    destination: str
    data_coding: int
    udh: bytes
    text: str
    payload: bytes = b""  # user data without the UDH, as received
    want_report: bool = True
    failure_report_only: bool = False  # SMPP registered_delivery 2: a receipt only if it failed
    success_report_only: bool = False  # CIMD2 056 with "delivered" (8) but no failure bit (2, 4)
    intermediate_report: bool = False  # SMPP registered_delivery bit 4: an ENROUTE receipt first
    esm_class: int = 0
    source_ton: int | None = None
    source_npi: int | None = None
    dest_ton: int | None = None
    dest_npi: int | None = None
    validity: str = ""  # as the submit wrote it: SMPP's validity_period, CIMD2's 050 or 051

    def expires_at(self, received: datetime) -> datetime | None:
        """When the SMSC gives the part up, by the validity its submit carried, read on the SMSC's own
        clock at `received` (a relative one counts from then); None for none or one it cannot read."""
        if not self.validity:
            return None
        if self.protocol == "smpp":
            return read_smpp_time(self.validity, received)
        return validity_end(self.validity, received)

    def expires_within(self, received: datetime, seconds: float) -> bool:
        """Whether its validity (`expires_at`) ends within `seconds` of `received`: before it is
        delivered, when that takes so long."""
        end = self.expires_at(received)
        return end is not None and end <= received + timedelta(seconds=seconds)


@dataclass(frozen=True)
class SubmitVerdict:
    """What the server answers. A refusal carries a protocol-neutral `error` ("invalid_destination")
    and its ready-made translations `smpp_status` and `cimd2_error`."""

    accepted: bool
    message_id: str  # decimal, unique and increasing; "" when refused
    error: str | None = None
    report: ReportStatus | None = None  # the report to send (None: none was requested)
    report_delay: float = 0.0
    intermediate: bool = False  # send a PENDING report before `report`
    detail: Detail | None = None  # a final state beyond failed (`receipts`): "expired" by its validity
    smpp_status: int = 0
    cimd2_error: int | None = None


class SimSession(Protocol):
    """A logged-in client connection able to receive MOs and reports."""

    protocol: str
    system_id: str

    async def send_mo(
        self, source: str, destination: str, text: str, *, parts: int | None = None, shuffle: bool = False
    ) -> None: ...

    async def send_report(
        self,
        message_id: str,
        source: str,
        destination: str,
        status: ReportStatus,
        submitted_at: datetime,
        *,
        detail: tuple[str, int] | None = None,  # a chosen final state and error (`receipts.Detail`)
    ) -> None: ...

    async def send_part(self, part: Any) -> None:
        """Deliver one MO part as a session of this protocol built it (its wire fields, concatenation
        UDH included): how a part held after a drop goes out again, renumbered but otherwise unchanged."""
