"""The final states an operator's receipt can name beyond delivered and failed, for `smsgw simulator
send-report --status expired|rejected|undeliverable|deleted [--error N]`: integrators must see how a
gateway takes an EXPIRED or REJECTD receipt with its err: code, which the simulator's own receipts
(DELIVRD, or UNDELIV err:001 for a number's fail suffix) never send.

A report with such a state is a failed one to the core (`ReportStatus.FAILED`) that carries its
`Detail`: SMPP writes its stat: and err: in the receipt text and its message_state; CIMD2 its 061
status code (2 validity period expired, 3 delivery failed, 8 deleted: CIMD2 has no "rejected") and
the error as 062, the reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FinalState:
    stat: str  # SMPP 3.4 appendix B receipt "stat:"
    message_state: int  # SMPP message_state TLV
    cimd2_status: int  # CIMD2 061 status code


FINAL_STATES = {
    "expired": FinalState("EXPIRED", 3, 2),
    "deleted": FinalState("DELETED", 4, 8),
    "undeliverable": FinalState("UNDELIV", 5, 3),
    "rejected": FinalState("REJECTD", 8, 3),
}
DEFAULT_ERROR = 1  # the err: of a chosen state without --error: "unknown subscriber", as a fail suffix's

# (a FINAL_STATES key, its error code 0-999): what a chosen receipt says beyond its ReportStatus.
Detail = tuple[str, int]
