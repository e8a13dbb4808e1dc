"""`smsc.logthrottle.LogThrottle`, the one rate limit of the SMSC links' warnings, on an injected clock:
what a flood of one kind logs, that another kind still gets its first line, and the counts held back."""

from __future__ import annotations

import structlog

from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)


def test_one_line_per_kind_per_interval_then_the_count_held_back() -> None:
    now = [100.0]
    throttle = LogThrottle(log, interval=1.0, clock=lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        for seq in range(5):
            throttle.warning("smpp.generic_nack", seq=seq)
        throttle.info("smpp.unexpected_response", seq=9)  # another kind: not hidden by the flood
        throttle.warning("cimd2.garbage", kind="garbage:STX before ETX", reason="STX before ETX")
        throttle.warning("cimd2.garbage", kind="garbage:no ETX", reason="no ETX")
        now[0] += 1.0
        throttle.warning("smpp.generic_nack", seq=5)  # the next line says how many were held back
        throttle.warning("smpp.generic_nack", seq=6)
        throttle.flush()
        throttle.flush()  # nothing more held back: nothing more said
    assert [(e["event"], e["suppressed"], e.get("summary", False)) for e in logs] == [
        ("smpp.generic_nack", 0, False),
        ("smpp.unexpected_response", 0, False),
        ("cimd2.garbage", 0, False),
        ("cimd2.garbage", 0, False),
        ("smpp.generic_nack", 4, False),
        ("smpp.generic_nack", 1, True),
    ]
    assert logs[1]["log_level"] == "info" and logs[-1]["seq"] == 6  # the summary names the last one
