"""An SMS that went too shortly before a phone's answer to have been read: the answer is to an older one.

No phone answers an SMS within `reached.REPLY_SECONDS` of its going: it must be delivered, read and
typed. The answer wait applies that to an SMS whose submit the SMSC has not answered yet
(`reached.unanswered`); an SMS whose submit it answered at once counted as reached from then on. So
with a fast SMSC the phone's answer to A's SMS, sent a second after B's SMS went, went to B, and with a
slow one the same answer went to A: which mailbox, and which company, got it depended on the SMSC's
latency. Here the same bound holds for SMS the SMSC took, by when each went to its link: the hand-off
the running dispatcher remembers (`gateway.handoffs`), else its claim (`parts.claimed_at`, no later than
the hand-off), else the SMSC's answer. Only while an older SMS from the number reached the phone before
the bound: the only SMS the phone got is what it answers, however soon.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING

from gateway.conversations.numbers import normalise
from gateway.handoffs import Handoffs

if TYPE_CHECKING:
    from gateway.conversations.reached import Scan


def went_at(conn: sqlite3.Connection, message_id: int, at: float, handed: Handoffs | None) -> float | None:
    """When the first of the SMS's parts the SMSC took by `at` went to its link, as far as is known."""
    from gateway.conversations.reached import _REACHED

    times = []
    for part_id, claimed, submitted in conn.execute(
        f"SELECT id, claimed_at, submitted_at FROM parts WHERE message_id = ? AND state IN {_REACHED}"
        " AND submitted_at <= ?",
        (message_id, at),
    ):
        known = handed.parts.get(part_id) if handed is not None else None
        first = known.first if known is not None and known.first is not None else claimed
        times.append(submitted if first is None else min(first, submitted))
    return min(times, default=None)


def read_late(
    conn: sqlite3.Connection, scan: Scan, at: float, number: str, region: str, handed: Handoffs | None
) -> Scan:
    """`scan` (`reached.messages_to`, SMS taken by the answer's time `at`) with an SMS from `number` that
    went within `REPLY_SECONDS` before the answer counted as not reached yet, when an older one from the
    number had reached the phone before that: the answer is to that one."""
    from gateway.conversations import reached

    latest = at - reached.REPLY_SECONDS
    ours = [s for s in scan.sent if s.sent_at is not None and normalise(s.source, region) == number]
    recent = [s for s in ours if s.sent_at is not None and s.sent_at > latest]
    if not recent or not any(s.sent_at is not None and s.sent_at <= latest for s in ours):
        return scan
    late = set()
    for s in recent:
        went = went_at(conn, s.message_id, at, handed)
        if went is None or went > latest:
            late.add(s.message_id)
    if not late:
        return scan
    return replace(scan, sent=[replace(s, sent_at=None) if s.message_id in late else s for s in scan.sent])
