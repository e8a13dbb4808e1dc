"""A step back's moves of the times stamped before it, one id range at a time (`gateway.stepmoves`).

Moved in one write, a step back of days held the store's one writer, and with it the event loop, for
~0.9 s a day of traffic (28,575 SMS a day): 30 days blocked SMTP, the SMSC links' enquire_link answers
and the panel for ~27 s. So the times that say when something happened move in chunks of ids, oldest
first, each its own short write: the acceptance and send times of the SMS (`senttimes.shift_sent_ids`),
and the MOs' times (here). What the chunks move by is fixed once, before the first one
(`gateway.stepmoves.MovePlan`): read again between chunks, the bounds would read the rows some chunks
moved already.

Oldest first keeps the order among the rows stamped before the step at every point: a row a chunk moved
reads older than any row no chunk moved yet, as it did before the step. Each function runs inside the
caller's write, which records how far the chunks went in the same transaction: a crash between two
chunks leaves every row moved once or not at all, and the next start goes on from there.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.store.clockstep import ClockStep, Marks

# In the store's key/value table, beside the clock check's reading: the plan of a step back's move and
# how far its chunks went (`gateway.stepmoves.MovePlan`, which writes it).
PLAN_KEY = "clock_step_move"
# The phases, in order, each a range of ids moved oldest first: the SMS (and their parts), the
# talks (`gateway.conversations.clockstep`), the MOs (and their paid votes).
PHASES = ("sms", "talks", "mo")


@dataclass(frozen=True, slots=True)
class MovePlan:
    """What a step back's chunks move by, read once before the first (`gateway.stepmoves.plan_back`),
    and how far they got. Its shape is said here once, for the move (`gateway.stepmoves`) and the
    hourly limit (`mo_still_to_move`): read in two places, a shape one missed would silently have
    turned off the limit's correction."""

    seconds: float
    after: tuple[int, int, int]  # `Marks` of the first rows written after the step
    ahead: tuple[tuple[tuple[int, int, int], float], ...]
    sent: tuple[int, ...]  # parts whose send time carries the stepped clock already
    since: float  # from where acceptance, send and conversation times move (`senttimes.moving`)
    floors: tuple[int, int]  # the first SMS whose acceptance, and whose parts' send times, move
    mo_floor: float  # the MOs received from then on move (`MoRepo.moving`)
    ends: dict[str, int]  # each phase's end id (exclusive)
    at: dict[str, int]  # each phase's next id

    def step(self) -> ClockStep:
        ahead = tuple((Marks(*since), seconds) for since, seconds in self.ahead)
        return ClockStep(self.seconds, Marks(*self.after), ahead, self.sent)

    def phase(self) -> str | None:
        """The phase the next chunk moves rows of; None once all are done."""
        return next((p for p in PHASES if self.at[p] < self.ends[p]), None)

    def done(self) -> bool:
        return self.phase() is None


def save_plan(conn: sqlite3.Connection, plan: MovePlan) -> None:
    value: dict[str, Any] = {
        "seconds": plan.seconds,
        "after": plan.after,
        "ahead": plan.ahead,
        "sent": plan.sent,
        "since": plan.since,
        "floors": plan.floors,
        "mo_floor": plan.mo_floor,
        "ends": plan.ends,
        "at": plan.at,
    }
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (PLAN_KEY, json.dumps(value)),
    )


def read_plan(value: str) -> MovePlan:
    """The plan `save_plan` wrote as `value`; raises on any other shape (a missing key, a wrong type)."""
    v = json.loads(value)
    return MovePlan(
        float(v["seconds"]),
        (int(v["after"][0]), int(v["after"][1]), int(v["after"][2])),
        tuple(((int(s[0]), int(s[1]), int(s[2])), float(f)) for s, f in v["ahead"]),
        tuple(int(i) for i in v["sent"]),
        float(v["since"]),
        (int(v["floors"][0]), int(v["floors"][1])),
        float(v["mo_floor"]),
        {p: int(v["ends"][p]) for p in PHASES},
        {p: int(v["at"][p]) for p in PHASES},
    )


def mo_where(floor: float, ids: tuple[int, int]) -> tuple[str, tuple[float, ...]]:
    """The MOs of `ids` ([low, high)) a step moves (`MoRepo.moving`, its bound `floor` read before the
    first chunk), as SQL on table mo and its arguments: also the paid votes' (`gateway.premium.clockstep`)."""
    return "id >= ? AND id < ? AND (received_at >= ? OR state = 'segment')", (*ids, floor)


def mo_chunk(conn: sqlite3.Connection, step: ClockStep, floor: float, ids: tuple[int, int]) -> int:
    """The times of the MOs of `ids` moved back by what `step` undoes of the clock each was received on
    (by its id); how many.

    MO times are the ends of windows that look back from the clock: the SMSC's redelivery of a copy
    (`redelivery_of`, a day), a segment joined already, the segments waiting to be joined, and the
    hourly mail limit per phone. Left on the old clock after a step back of an hour, the last hour's
    MOs would look an hour younger: the same SMS sent again by the phone a minute later would be within
    2 s of its copy's acknowledgement (dropped as the SMSC's, a vote unpaid), and the hourly limit would
    count two hours of answers. An MO's acknowledgement and its parts' time (`parts_at`) move with it,
    so that they stay as far apart as they were; an acknowledgement stamped after the step keeps its
    time (it reads before its MO's receipt: an acknowledgement goes out after its MO is stored). Only
    rows those windows can still reach move (`MoRepo.moving`): older ones are history no window reads."""
    back, args = step.back_by("mo", "id")
    where, bounds = mo_where(floor, ids)
    return conn.execute(
        f"UPDATE mo SET received_at = received_at - ({back}), parts_at = parts_at - ({back}),"
        f" acked_at = acked_at - (CASE WHEN acked_at >= received_at THEN {back} ELSE 0 END) WHERE {where}",
        (*args, *args, *args, *bounds),
    ).rowcount


def mo_start(conn: sqlite3.Connection, first: int, floor: float) -> int:
    """The first MO id a step moves (`first`: the first received after it): where its chunks begin.

    The least of two indexed searches, the recent MOs' and the segments': as one MIN over `id < first`
    SQLite walked the table from its oldest row, 0.2-0.9 s under a million older MOs, in the write
    that starts the move."""
    row = conn.execute(
        "SELECT MIN(id) FROM (SELECT MIN(id) AS id FROM mo INDEXED BY mo_received"
        " WHERE received_at >= ? AND id < ? UNION ALL"
        " SELECT MIN(id) FROM mo INDEXED BY mo_state WHERE state = 'segment' AND id < ?)",
        (floor, first, first),
    ).fetchone()
    return first if row[0] is None else int(row[0])


def mo_still_to_move(conn: sqlite3.Connection) -> tuple[str, list[float]]:
    """SQL for the seconds the MO with id `id` (of table mo) has still to move back by, 0 unless a step
    back's move under way has not reached it yet (`mo_chunk`), and its arguments: its time with the step
    applied is `received_at` less this.

    A move of a step of days takes seconds to minutes, a start's and a crash's until the worker's looks
    finish it, and answers come meanwhile. The MOs not moved yet read younger by the step: the hourly
    limit counted the answers of the hour before the step as within the hour, and kept a phone's next
    answer for as long as the move lasted. A plan that cannot be read counts as none here: the clock
    check says it and drops it (`gateway.stepmoves.load_plan`)."""
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (PLAN_KEY,)).fetchone()
    if row is None:
        return "0", []
    try:
        plan = read_plan(row[0])
    except Exception:  # any shape: a missing key, a wrong type
        return "0", []
    step, ids, floor = plan.step(), (plan.at["mo"], plan.ends["mo"]), plan.mo_floor
    if ids[0] >= ids[1]:  # the MOs' chunks are done: what is left is the SMS' and conversations'
        return "0", []
    back, args = step.back_by("mo", "id")
    where, bounds = mo_where(floor, ids)
    return f"(CASE WHEN {where} THEN {back} ELSE 0 END)", [*bounds, *args]
