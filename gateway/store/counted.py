"""Rows that leave a state the `/metrics` counters count stay counted (`purged_counts`, migration 31).

The counters are read from the rows kept (gateway/web/counts.py), plus these. A row the retention
purge deletes, an SMS `smsgw queue retry` sends again, an MO whose answer mail the relay refused:
each made a counter fall, which Prometheus reads as a reset, and `rate()` as everything counted
arriving at once. Each such change adds what it takes away here, in its own transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

# The state of a message's row `smsgw queue retry` took out of a final state is kept as this and
# the state ("retried:failed"): the SMS stays counted under the state it reached, but it was not
# accepted again. Kept as "failed" alone, /metrics could not tell a retry's snapshot from a row the
# purge deleted, and smsgw_messages_accepted_total rose by one with every retry.
RETRIED = "retried:"
# An MO's states while it waits to be handled: `smsgw_mo_waiting`, a gauge's, never kept counted once
# the row is gone (the counters are of the other states).
MO_UNFINISHED = ("new", "segment", "waiting")  # waiting: for a submit's answer (`conversations.waiting`)
MO_UNFINISHED_SQL = f"({', '.join(map(repr, MO_UNFINISHED))})"


def keep_counted(conn: sqlite3.Connection, metric: str, rows: str, args: tuple[Any, ...] = ()) -> None:
    """Add `rows`, a SELECT of (label, state, count), to `metric`'s counts of rows gone: label is the
    account id or link ('' for none), as gateway/web/counts.py reads them back."""
    conn.execute(
        "INSERT INTO purged_counts (metric, label, state, n)"
        f" SELECT ?, * FROM ({rows}) WHERE true"  # WHERE: an upsert's SELECT must have one
        " ON CONFLICT (metric, label, state) DO UPDATE SET n = n + excluded.n",
        (metric, *args),
    )
