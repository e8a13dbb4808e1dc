"""A step of the wall clock: back, every table's times moved in one write, the features' with the
store's; forward, the validities moved and the step kept for the reply windows. The store moves its
own (the queue's waits and SMS times, the outbox, the MOs) and may not name a feature's tables
(`tests/test_feature_boundaries.py`); the conversations and the paid votes move here beside them,
each before the rows whose times choose it move."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.conversations import clockstep as conversations
from gateway.premium import clockstep as premium
from gateway.store import forwardsteps
from gateway.store.clockstep import extend_validities

if TYPE_CHECKING:
    from gateway.store.clockstep import ClockStep
    from gateway.store.db import Store


def shift_back(store: Store, step: ClockStep) -> tuple[int, int, int]:
    """Inside the housekeeping's write of the step: the parts, outbox mails and MOs moved (counts)."""
    conn = store.db.conn
    forwardsteps.record_back(conn, step.seconds)  # the steps forward the reply windows count
    oldest = conversations.oldest_kept(conn)
    conversations.shift(conn, store.clock(), step)  # told by the SMS's acceptance times as stamped
    premium.shift(conn, step, store.mo.moving(step))  # told by their MOs' times as stamped
    return (
        store.queue.shift_for_clock_step(step, oldest),
        store.outbox.shift_for_clock_step(step),
        store.mo.shift_for_clock_step(step),
    )


def shift_forward(store: Store, seconds: float, first_message: int, now: float) -> int:
    """Inside the housekeeping's write of a step forward of `seconds`, found by the look reading `now`:
    the validities of the SMS accepted before it (ids below `first_message`) move with it, and the step
    is kept for the reply windows, which count it as not passed (`gateway.store.forwardsteps`). Returns
    how many parts moved."""
    forwardsteps.record_forward(store.db.conn, now, seconds)
    return extend_validities(store.db.conn, seconds, first_message, now)
