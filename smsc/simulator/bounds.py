"""Bounds the simulator keeps while it runs inside the daemon for months: the lists of recent items
it keeps for tests and `status`, and the pause before offering a refused delivery again. Apart from
`core` (which re-exports them) so that the core keeps to its state and routing.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

MAX_RECORDS = 1000  # kept in memory for tests and `status`; the log file has everything

# The longest pause before delivering an MO or a receipt again after the client refused it.
MAX_RETRY_DELAY = 60.0


def retry_pause(first: float, attempts: int) -> float:
    """The pause before attempt `attempts` + 1 of a delivery the client answered with an error:
    `first`, doubling, at most MAX_RETRY_DELAY. An SMSC keeps offering what an ESME refused for
    now (a full disk answers a temporary error) for minutes to hours; at a fixed second apart the
    simulator gave up after five seconds and the MO was lost where a real SMSC would have waited."""
    return min(first * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY)


def keep_recent(items: list[T], item: T) -> None:
    """Append `item` and forget all but the last MAX_RECORDS: the simulator runs inside the daemon
    for months, and these lists are for tests and `status` (the log file has everything). A list and
    not a deque, so that callers keep slicing it and comparing it with lists."""
    items.append(item)
    del items[:-MAX_RECORDS]
