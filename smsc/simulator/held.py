"""What the simulator holds for a client not bound (or one whose session ended before it took it):
phones' MOs (whole, or one part as sent) and delivery receipts, each kept for the next login of its
protocol (and, for a receipt, of its login).

MOs and receipts are capped apart. One deque of 10,000 for both let a transmitter-only client's
flood of receipts push a phone's MO out, silently: an SMSC's store of MOs is the phone's message, a
receipt is a status the gateway can do without (and the owed file still has it for the next start).
What a cap drops is logged (one line a second per kind, the rest counted: `LogThrottle`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)

MAX_HELD_MOS = 10_000  # MOs and MO parts: each the text of a phone's SMS
MAX_HELD_REPORTS = 100_000  # receipts: as many as the core remembers message ids for

# (protocol or None for any, system_id or None for any, what: ("mo", ...), ("part", ...), ("report", ...))
Item = tuple[str | None, str | None, tuple[Any, ...]]


class Held:
    """The held items, MOs and receipts apart; see the module docstring."""

    def __init__(self, max_mos: int = MAX_HELD_MOS, max_reports: int = MAX_HELD_REPORTS) -> None:
        self.mos: deque[Item] = deque()
        self.reports: deque[Item] = deque()
        self.max_mos, self.max_reports = max_mos, max_reports
        self.dropped = {"mo": 0, "report": 0}  # since the start, for tests and `status`
        self._warn = LogThrottle(log)

    def __len__(self) -> int:
        return len(self.mos) + len(self.reports)

    def __iter__(self) -> Iterator[Item]:
        yield from self.mos
        yield from self.reports

    def add(self, item: Item) -> None:
        """Hold `item`; past its kind's cap the oldest of that kind goes, and the log says so."""
        is_report = item[2][0] == "report"
        queue, cap = (self.reports, self.max_reports) if is_report else (self.mos, self.max_mos)
        if len(queue) >= cap:
            gone = queue.popleft()
            kind = "report" if is_report else "mo"
            self.dropped[kind] += 1
            what = {"message_id": gone[2][1]} if is_report else {"part": gone[2][0] == "part"}
            self._warn.warning(
                "sim.held_dropped", kind=kind, item=kind, cap=cap, dropped=self.dropped[kind], **what
            )
        queue.append(item)

    def take(self, fits: Callable[[Item], bool]) -> list[Item]:
        """Remove and return the items `fits` accepts: MOs first, then receipts, each oldest first."""
        taken: list[Item] = []
        for queue in (self.mos, self.reports):
            kept: list[Item] = []
            for item in queue:
                (taken if fits(item) else kept).append(item)
            if len(kept) < len(queue):
                queue.clear()
                queue.extend(kept)
        return taken

    def held_mos(self) -> list[list[Any]]:
        """The held MOs as `heldmo.save` writes them: whole ([protocol, source, destination, ...]) and
        the parts a session ended before its client acknowledged ([protocol, "part", fields]). Whole
        ones alone were kept: a part handed back at a stop (an SMPP deliver_sm unanswered, CIMD2's
        queued 20s) was lost with the process, the phone's SMS with it."""
        return [[h[0], *h[2][1:]] if h[2][0] == "mo" else [h[0], "part", h[2][1]] for h in self.mos]
