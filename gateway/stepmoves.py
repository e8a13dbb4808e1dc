"""A step back of the wall clock: every table's times moved in one write, the features' with the
store's. The store moves its own (the queue's waits and SMS times, the outbox, the MOs) and may not
name a feature's tables (`tests/test_feature_boundaries.py`); the conversations and the paid votes move
here beside them, each before the rows whose times choose it move."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.conversations import clockstep as conversations
from gateway.premium import clockstep as premium

if TYPE_CHECKING:
    from gateway.store.clockstep import ClockStep
    from gateway.store.db import Store


def shift_back(store: Store, step: ClockStep) -> tuple[int, int, int]:
    """Inside the housekeeping's write of the step: the parts, outbox mails and MOs moved (counts)."""
    conn = store.db.conn
    oldest = conversations.oldest_kept(conn)
    conversations.shift(conn, store.clock(), step)  # told by the SMS's acceptance times as stamped
    premium.shift(conn, step, store.mo.moving(step))  # told by their MOs' times as stamped
    return (
        store.queue.shift_for_clock_step(step, oldest),
        store.outbox.shift_for_clock_step(step),
        store.mo.shift_for_clock_step(step),
    )
