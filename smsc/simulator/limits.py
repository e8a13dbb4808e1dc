"""The simulator's error injection for submits (R-6.2 says the gateway must slow down and retry on
throttling and a full queue, not fail the SMS; integrators need an SMSC that does it to test that).

Off by default. `max_submits_per_second` caps a login's submits in each second of the clock (both
protocols together, as an operator caps an account): one more is refused as throttled, SMPP
0x58 ESME_RTHROTTLED, CIMD2 900:10 "temporary congestion" (protocols.md 1.7, 2.8). And
`max_unanswered_submits` is a session's window: a submit arriving while that many of the
session's are still unanswered (a `response_delay_seconds` keeps them so) is refused as the queue
full, SMPP 0x14 ESME_RMSGQFUL, CIMD2 900:10 again. A refused submit is not taken: no id, no line in
the simulator's log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

THROTTLED, QUEUE_FULL = "throttled", "queue_full"
SMPP_STATUS = {THROTTLED: 0x58, QUEUE_FULL: 0x14}
CIMD2_ERROR = {THROTTLED: 10, QUEUE_FULL: 10}


def setting(cfg: Any, name: str, default: float) -> float:
    """A setting of the [simulator] section, or its default for a settings object without it."""
    value = getattr(cfg, name, default)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default


class SubmitLimits:
    """See the module docstring. `clock` gives seconds (the core's, so that tests can hold it)."""

    def __init__(self, cfg: Any, clock: Callable[[], float]) -> None:
        self.per_second = int(setting(cfg, "max_submits_per_second", 0))
        self.window = int(setting(cfg, "max_unanswered_submits", 0))
        self._clock = clock
        self._second = -1
        self._counts: Counter[str] = Counter()  # submits taken per login in `_second`
        self.refused: Counter[str] = Counter()  # by reason, since the start: for tests and `status`

    def refuse(self, system_id: str, unanswered: int) -> str | None:
        """Why a submit of `system_id`, arriving while its session has `unanswered` submits not yet
        answered, is refused; None when it is taken (and then counted against the second)."""
        reason = None
        if self.window and unanswered >= self.window:
            reason = QUEUE_FULL
        elif self.per_second:
            second = int(self._clock())
            if second != self._second:
                self._second, self._counts = second, Counter()
            if self._counts[system_id] >= self.per_second:
                reason = THROTTLED
            else:
                self._counts[system_id] += 1
        if reason is not None:
            self.refused[reason] += 1
        return reason
