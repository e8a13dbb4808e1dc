"""A step of the wall clock: back, every table's times moved, the features' with the store's; forward, the
validities moved and the step kept for the reply windows. The store moves its own (the queue's waits and
SMS times, the outbox, the MOs) and may not name a feature's tables (`tests/test_feature_boundaries.py`);
the conversations and the paid votes move here beside them, each before the rows whose times choose it
move.

A step back moves in two kinds of writes. The first (`shift_back`) moves what the dispatcher and the
outbox act on (the waiting parts' next tries, validities and claim times, the outbox's next tries: the
queue, a few thousand rows at most), bills again a month the step goes back into, undoes the steps
forward the reply windows count, and fixes what the rest moves by (`MovePlan`), kept in the store in
the same transaction. The rest (when each SMS was accepted and went, the conversations, the MOs and
the paid votes: a row per SMS of the days the step goes back) moves in chunks of ids, oldest first,
each its own write of at most some tens of milliseconds (`move_chunk`), the plan's progress recorded
in each: one write for all held the event loop ~0.9 s a day of traffic, 27 s for a step of 30 days. A
crash between chunks is finished by the next start's first look (`load_plan`), no row moved twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from gateway.conversations import clockstep as conversations
from gateway.premium import clockstep as premium
from gateway.store import forwardsteps, senttimes, stepchunks
from gateway.store.clockstep import ClockStep, extend_validities
from gateway.store.stepchunks import PHASES, MovePlan, save_plan

log = structlog.get_logger("gateway.housekeeping")  # the clock check's lines

if TYPE_CHECKING:
    from gateway.store.db import Store

# In the store's key/value table, beside the clock check's reading: no schema change. The hourly limit
# reads it too, for the MOs not moved yet (`stepchunks.mo_still_to_move`).
PLAN_KEY = stepchunks.PLAN_KEY
__all__ = ["PHASES", "MovePlan", "save_plan"]  # the plan's shape is the store's (`stepchunks`), said once
# The loop's time a chunk aims at: SMTP, the links and the panel wait no longer for one than for a
# busy moment's group commit. A row's move costs 3 us on a small store and 30 on a big one (its indexes'
# pages out of the cache), so the ids a chunk covers follow what the last one held the loop
# (`ChunkSize`): its statements and its batch's COMMIT (`gateway.store.writehold.Hold`). Paced on the
# statements alone, the commit came on top and a chunk aimed at 10 ms held the loop 35-67 ms for a step
# of 7 days (bench/clock_back.py); paced on the whole write, from its await to its end, the chunks
# shrank with every wait for the disk's fsync (off the loop) and for the writes before them, and under
# load the move took 1.5-3x as long for no smaller stall.
CHUNK_SECONDS = 0.01
# The ids of a phase's first chunk, and the fewest and most: a row costs about as much in each.
FIRST_CHUNK, FEWEST, MOST = 500, 50, 8_000


def shift_back(store: Store, step: ClockStep) -> tuple[int, int, MovePlan]:
    """Inside the housekeeping's write of the step: the parts' waits and validities and the outbox's next
    tries moved (their counts), and the plan of the rest, kept for its chunks (`move_chunk`)."""
    conn, now = store.db.conn, store.clock()
    forwardsteps.record_back(conn, step.seconds)  # the steps forward the reply windows count
    oldest = conversations.oldest_kept(conn)
    low, first, since = senttimes.moving(conn, now, step)  # read before anything moves
    reach = senttimes.reach(now + step.seconds, step, oldest)
    sent_floor = senttimes.floor_id(conn, now + step.seconds - reach, first)
    senttimes.shift_users(conn, now, step, low, first, since)  # compares the SMS's times as stamped
    _where, (first_mo, mo_floor) = store.mo.moving(step)
    talks = conversations.moving_ids(conn, since)
    plan = MovePlan(
        step.seconds,
        (step.after.messages, step.after.mo, step.after.outbox),
        tuple(((s.messages, s.mo, s.outbox), forward) for s, forward in step.ahead),
        step.sent,
        since,
        (low, sent_floor),
        mo_floor,
        {"sms": first, "talks": talks[1], "mo": int(first_mo)},
        {
            "sms": min(low, sent_floor),
            "talks": talks[0],
            "mo": stepchunks.mo_start(conn, int(first_mo), mo_floor),
        },
    )
    if not plan.done():  # none kept when nothing moves: nothing for a chunk to do
        save_plan(conn, plan)
    parts = store.queue.shift_for_clock_step(step, oldest, False)  # the times move in the chunks
    return parts, store.outbox.shift_for_clock_step(step), plan


class ChunkSize:
    """How many ids the next chunk covers: scaled by what the last one held the loop (its statements
    and its commit) against `CHUNK_SECONDS`."""

    def __init__(self) -> None:
        self.ids, self.phase = FIRST_CHUNK, ""

    def of(self, phase: str) -> int:
        """The ids of the next chunk, of `phase`: another table's rows cost what they cost."""
        if phase != self.phase:
            self.ids, self.phase = FIRST_CHUNK, phase
        return self.ids

    def took(self, seconds: float) -> None:
        scale = CHUNK_SECONDS / max(seconds, 1e-4)
        self.ids = int(min(max(self.ids * min(max(scale, 0.25), 1.5), FEWEST), MOST))


def move_chunk(store: Store, plan: MovePlan, sent: list[int], size: ChunkSize) -> tuple[MovePlan, int, int]:
    """Inside a write of its own: the next chunk of the plan's first phase not done, and the plan as it
    goes on from there, recorded in the same transaction (deleted with the last chunk). `sent`: parts
    recorded as submitted since the move began, whose send times carry the stepped clock; `size`: the
    ids it covers (the caller tells it how long the write held the loop). Returns the plan, and how many
    SMS and MOs moved."""
    conn, step = store.db.conn, plan.step()
    plan = replace(plan, sent=tuple(sorted({*plan.sent, *sent})))
    phase = plan.phase()
    assert phase is not None, "a plan done has no chunk"
    low = plan.at[phase]
    ids = (low, min(low + size.of(phase), plan.ends[phase]))
    sms = mos = 0
    if phase == "sms":
        sms = senttimes.shift_sent_ids(conn, step, plan.since, plan.floors, ids, plan.sent)
    elif phase == "talks":
        conversations.shift_ids(conn, step, plan.since, plan.ends["sms"], ids)
    else:
        premium.shift(conn, step, stepchunks.mo_where(plan.mo_floor, ids))  # before the MOs: told by them
        mos = stepchunks.mo_chunk(conn, step, plan.mo_floor, ids)
    plan = replace(plan, at={**plan.at, phase: ids[1]})
    if plan.done():
        conn.execute("DELETE FROM billing_state WHERE key = ?", (PLAN_KEY,))
    else:
        save_plan(conn, plan)
    return plan, sms, mos


def load_plan(conn: sqlite3.Connection) -> MovePlan | None:
    """The plan of a move a stop or crash cut short, to be finished; None without one, or with one that
    cannot be read (edited by hand): read at every start, it must not stop the daemon from starting. Its
    rows stay as far as it moved them, said once: the plan is deleted once said (kept, every start
    said it again)."""
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (PLAN_KEY,)).fetchone()
    if row is None:
        return None
    try:
        return stepchunks.read_plan(row[0])
    except Exception as exc:  # any shape: a missing key, a wrong type
        log.warning("clock.move_unreadable", error=f"{type(exc).__name__}: {exc}"[:200], dropped=True)
    try:
        conn.execute("DELETE FROM billing_state WHERE key = ? AND value = ?", (PLAN_KEY, row[0]))
    except sqlite3.Error as exc:  # another process holds the store: the next start says it and tries again
        log.warning("clock.move_unreadable_kept", error=str(exc))
    return None


def shift_forward(store: Store, seconds: float, first_message: int, now: float, since: float) -> int:
    """Inside the housekeeping's write of a step forward of `seconds`, found by the look reading `now`:
    the validities of the SMS accepted before it (ids below `first_message`) move with it, and the step
    is kept for the reply windows and the queue's and outbox's ages, which count it as not passed
    (`gateway.store.forwardsteps`), with `since`, the earliest reading the stepped clock can have had:
    an SMS or mail stamped on it in the seconds before the look came after the step. Returns how many
    parts moved."""
    forwardsteps.record_forward(store.db.conn, now, seconds, since)
    return extend_validities(store.db.conn, seconds, first_message, now)
