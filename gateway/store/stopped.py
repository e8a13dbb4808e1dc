"""The SMS still waiting for a phone that just said STOP end at once (R-2.4), as the claim would end
them when they came due: held for quiet hours, the panel and `queue list` said "queued" for hours
after the STOP, and their senders heard only when the window opened.

Called inside the MO's write (`gateway.events`), so that the parts end, and their bounces are
queued, with the opt-out or not at all. Parts already claimed are the dispatcher's
(`Dispatcher.opted_out`); held ones (a suspension, a human's hold) end when released, at the claim.
"""

from __future__ import annotations

from gateway.store.queue import WAITING, QueueRepo
from gateway.store.records import Finished
from gateway.store.settling import OPTED_OUT


def end_waiting(queue: QueueRepo, number: str) -> tuple[list[Finished], str | None]:
    """End the parts to `number` still waiting in the queue (queued, held for quiet hours, deferred
    for a retry) as the claim ends opted-out parts: all together (`end_parts`: a long SMS settled
    once, after all its parts, one bounce). Returns the finished messages, for the notifier, and
    the note for the STOP's mail (None when nothing waited)."""
    # Through the partial index of waiting parts: a STOP is rare, and an index on every part's
    # destination would cost each insert.
    sql = (
        f"SELECT id, message_id FROM parts INDEXED BY parts_waiting_expiry WHERE ({WAITING})"
        " AND state <> 'hold' AND destination = ? ORDER BY message_id, seq"
    )
    waiting = queue.conn.execute(sql, (number,)).fetchall()
    if not waiting:
        return [], None
    finished = queue.end_parts([part for part, _message in waiting], "failed", OPTED_OUT)
    messages = len({message for _part, message in waiting})
    sms = "1 SMS" if messages == 1 else f"{messages} SMS"
    return finished, f"{sms} still waiting to go to it ended unsent (opted out), their senders told"
