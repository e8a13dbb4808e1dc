"""The CIMD2 SMSC numbers its requests from a counter of 128 (protocols.md 1.2): an MO under the number,
060, phone and text of an earlier one before the counter can have come round to that number is that
request again (`resent`); after it, with the earlier one's acknowledgement read, a new SMS
(`smsc.cimd2.mostamps`). The window counts from the first copy: the SMSC's resend does not move its
counter. Counted from the resend, the phone's next vote under that number and minute stamp, after the
counter came round, was marked resent and kept as the first vote's copy, unpaid.

The connection's record of stamps alone: the order of the SMSC's requests is what is judged."""

from __future__ import annotations

import structlog

from smsc.base import InboundSms
from smsc.cimd2.messages import Once
from smsc.cimd2.mostamps import OTHERS, MoStamps

STAMP = "261203120000"  # stamped to the minute: the phone's next vote gets the same one


def test_the_counter_is_counted_from_the_first_copy_not_its_resend() -> None:
    stamps = MoStamps("c1", Once(structlog.get_logger().warning))

    def vote(number: int) -> InboundSms:
        stamps.took()
        sms = stamps.arrived(InboundSms("+48601222222", "7910", "KP123 A", raw={"smsc_time": STAMP}), number)
        stamps.handed(sms)
        stamps.acked(sms, True)
        return sms

    assert not vote(200).resent
    for _ in range(60):  # other requests of the SMSC
        stamps.took()
    assert vote(200).resent  # its 70 late: the same request again, the counter not moved
    for _ in range(OTHERS - 60):  # the counter came round to 200 again
        stamps.took()
    nxt = vote(200)
    assert not nxt.resent
    assert "smsc_time" not in nxt.raw  # a new SMS under a repeated stamp: judged by the acknowledgements
