"""What waits in the queue: which parts wait for a link (`parked`), how many parts wait
(`waiting_parts`: the banner, the queue's depth) and how long the oldest SMS due has waited (`smsgw
status`, /healthz's queue look, the dashboard and /metrics read it alike). Apart from the panel's
metrics module, whose web stack (starlette, prometheus_client: some 200 ms of imports) the daemon's
status look had to import, lazily, at the moment something was first queued: a stall of the event
loop at a moment no one chose."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.forwardsteps import row_steps, seconds_after


def parked(table: str = "") -> str:
    """The condition on `parts` of a part waiting unclaimed for a link of its route to come up
    (`gateway.linkwaits`): deferred, due at its validity's end. `table` goes before each column: an
    alias and a dot ("p."), or "+" to keep the indexes off them. The one rule for all code that reads
    or moves these times: such a part's due time is no try, and code that moves one of the two times
    and not the other (a clock step, a release from quiet hours) loses it for its link's coming up,
    or takes it for a part due later (a quiet-hours hold)."""
    return f"{table}state = 'deferred' AND {table}next_attempt_at = {table}expires_at"


# The oldest SMS with a part due: read off parts_due (the due parts' range), each due part's message
# by its key. Its message's acceptance, not the part's due time: a part an SMSC throttles is due
# again a moment later, so its due time never ages while nothing is delivered. Due within
# DUE_SLACK_SECONDS counts (a throttle's pause, a retry's back-off); a part held for quiet hours or
# a later send is not waiting yet.
DUE_SLACK_SECONDS = 60.0
# A part waiting for a link of its route to come up is due at its validity's end (`parked`) and waits
# all the same: the second branch, the deferred parts due later, counts it.
QUEUE_OLDEST = (
    "SELECT MIN(oldest) FROM (SELECT MIN(m.created_at) AS oldest FROM parts p JOIN messages m"
    " ON m.id = p.message_id WHERE p.state IN ('queued', 'deferred', 'active') AND p.next_attempt_at <= ?1"
    " UNION ALL SELECT MIN(m.created_at) FROM parts p JOIN messages m ON m.id = p.message_id"
    f" WHERE p.next_attempt_at > ?1 AND {parked('p.')})"
)


def queue_oldest(conn: Any, now: float) -> float | None:
    """When the oldest SMS with a part due at `now`, or waiting for a link, was accepted (None: none),
    on the clock as it reads now: later by each step forward of the clock made since, which is no time
    it waited (`gateway.store.forwardsteps`). Read as stamped, an SMS accepted a minute before a step
    of 8 days "waited 8 days": status exited 1 and /healthz and the dashboard said the queue stood,
    10 minutes before it could be so. (The oldest as stamped is the oldest so moved: a time stamped
    after a step reads later than the step's own.) Never after `now`: no age read off it is below 0,
    whatever a kept step's time (a step once kept late had one read minus 8 days)."""
    oldest = conn.execute(QUEUE_OLDEST, (now + DUE_SLACK_SECONDS,)).fetchone()[0]
    return None if oldest is None else min(now, float(oldest) + seconds_after(row_steps(conn), oldest))


def waiting_parts(conn: sqlite3.Connection) -> int:
    """Parts not yet handed to an SMSC for good: a walk of every one (the daemon counts it off the
    event loop, `gateway.queuedepth`)."""
    sql = "SELECT COUNT(*) FROM parts WHERE state IN ('queued', 'deferred', 'active')"
    return int(conn.execute(sql).fetchone()[0])


def waiting_by_account(conn: sqlite3.Connection) -> dict[int | None, int]:
    """`waiting_parts` by account: the waiting ones from the index by account (a walk of every one,
    in account order, so grouped without a sort), those in flight (a window's worth) by state."""
    counts: dict[int | None, int] = dict(
        conn.execute(
            "SELECT account_id, COUNT(*) FROM parts INDEXED BY parts_account_due"
            " WHERE state IN ('queued', 'deferred') GROUP BY account_id"
        ).fetchall()
    )
    for account, n in conn.execute(
        "SELECT account_id, COUNT(*) FROM parts WHERE state = 'active' GROUP BY account_id"
    ):
        counts[account] = counts.get(account, 0) + n
    return counts
