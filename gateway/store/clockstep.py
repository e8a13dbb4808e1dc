"""Which stored rows a step of the wall clock came after, told by their ids rather than their times.

Rows carry the wall clock's reading of when they were written, and their ids grow in the order
they were written. A stored time cannot say on which side of a step its row was written once the
clock has gone back and forth: an SMS's acceptance time is never moved, so after a step back of an
hour it reads like one stamped an hour later, while the clock's own readings have gone back; and a
row written between a step back and the look that finds it already carries the stepped clock. An
id cannot be mistaken: the housekeeping reads the highest ids at every look (`Marks`); a step came
between two looks, so rows up to the first look's ids were written before it and rows after the
second look's after it. Only the rows between are placed by their time, which within those few
seconds went one way only (`first_after`). Each step is kept as the first ids written after it,
and `ClockStep` turns them into how far each row's times move.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.store.policy import SUSPENDED_HOLD
from gateway.store.queueage import parked

log = structlog.get_logger(__name__)

# The tables whose rows' times move with a step, and the time each row was stamped with on writing.
_STAMPED = {"messages": "created_at", "mo": "received_at", "outbox": "created_at"}


@dataclass(frozen=True, slots=True)
class Marks:
    """An id per table: the highest at a look, or the first written after a step."""

    messages: int = 0
    mo: int = 0
    outbox: int = 0


def read_marks(conn: sqlite3.Connection) -> Marks:
    """The highest ids now; read at every look, so three lookups of the rowid's end."""
    row = conn.execute(
        "SELECT " + ", ".join(f"(SELECT MAX(id) FROM {table})" for table in _STAMPED)
    ).fetchone()
    return Marks(*(value or 0 for value in row))


def first_after(conn: sqlite3.Connection, earlier: Marks, later: Marks, back: bool, between: float) -> Marks:
    """The first id of each table written after a step that came after the look that read
    `earlier`. Rows written before the step read at least that look's clock and at most its reading
    plus the monotonic time since; those written after it are off by the step, so `between` (the
    time that places them, `gateway.clocksteps.seam`) tells them apart. The `later` ids bound the
    search: a row written after them came after the step, whatever it reads (within a run the next
    look's ids; on a start's first look, the ids read at the start, before anything could write).
    """
    below = "<" if back else ">"
    ids = []
    for (table, stamp), low, high in zip(_STAMPED.items(), _fields(earlier), _fields(later), strict=True):
        first = conn.execute(
            f"SELECT MIN(id) FROM {table} WHERE id > ? AND id <= ? AND {stamp} {below} ?",
            (low, high, between),
        ).fetchone()[0]
        ids.append(high + 1 if first is None else first)
    return Marks(*ids)


def _fields(marks: Marks) -> tuple[int, int, int]:
    return marks.messages, marks.mo, marks.outbox


@dataclass(frozen=True, slots=True)
class ClockStep:
    """A step back of the wall clock, as the times stored before it are to be moved.

    A row written after the step (`after`: its table's first id written after it) carries the
    stepped clock already and keeps its times. A wait (a next try) of a row written before it
    moves back by the whole step: it was stamped on the clock before the step, and one that ends
    early costs a try sooner, never a message. A time that says when something happened (an SMS
    accepted, an MO received) moves by what the step undoes of the clock it was stamped on: a step
    back that corrects forward steps seen earlier (`ahead`, which left those times as they were)
    moves a time stamped before them by only the rest, and one stamped after them by the whole
    step. Validities are moved by a step forward (`extend_validities`), so they move back by the
    whole step: the housekeeping hands the queue its step without `ahead`.
    """

    seconds: float  # the step back
    after: Marks  # the first id of each table written after it
    # Forward steps left unmoved before it, oldest first: (the first ids written after each, its seconds).
    ahead: tuple[tuple[Marks, float], ...] = ()
    # The parts sent after it, whatever their SMS's id: their send times keep theirs (`sendlog.SendLog`).
    sent: tuple[int, ...] = ()

    def first(self, table: str) -> int:
        """The first id of `table` written after the step: rows from it on are not moved."""
        return int(getattr(self.after, table))

    def back_by(self, table: str, row_id: str) -> tuple[str, list[float]]:
        """SQL for how far a time stamped when the row of `table` with id `row_id` (an SQL
        expression) was written moves back, and its parameters in order."""
        sql, args = "CASE", []
        left = self.seconds
        for since, forward in reversed(self.ahead):
            sql += f" WHEN {row_id} >= ? THEN ?"
            args += [getattr(since, table), max(left, 0.0)]
            left -= forward
        if not args:
            return "?", [max(left, 0.0)]
        return sql + " ELSE ? END", [*args, max(left, 0.0)]


def extend_validities(conn: sqlite3.Connection, seconds: float, first_message: int, now: float) -> int:
    """The wall clock stepped forward by `seconds` that did not pass (`gateway.housekeeping`, told
    by boot time): the validities of SMS accepted before it (ids below `first_message`) move with
    it, or each whose validity ends within the step expires at once, never sent ("validity period
    expired while no link was up", 5 SMS 2 s after a step of 2 days). Waits are left: one ending
    early costs a try sooner, never a message; but not the wait for a link (`queueage.parked`), due
    at its validity's end and found so when its link comes up: left, it waited out its old validity
    with its link up. A quiet-hours hold still ahead of the clock (`now`) keeps its validity, counted
    from that hour, as a step back leaves it (`QueueRepo.shift_for_clock_step`).
    Returns how many parts moved. Run inside the caller's write."""
    # The right-hand sides read the row as it was: the CASE sees the times before either moved.
    return conn.execute(
        "UPDATE parts SET expires_at = expires_at + ?1,"
        f" next_attempt_at = CASE WHEN {parked()} THEN next_attempt_at + ?1 ELSE next_attempt_at END"
        " WHERE message_id < ?2"
        " AND state IN ('queued', 'deferred', 'active', 'hold', 'submitted')"
        " AND NOT (state = 'queued' AND next_attempt_at > ?3)"
        " AND NOT (state = 'hold' AND error = ?4 AND attempts = 0 AND next_attempt_at > ?3)",
        (seconds, first_message, now, SUSPENDED_HOLD),
    ).rowcount


def left_ahead(
    ahead: tuple[tuple[Marks, float], ...], back: float, jitter: float
) -> tuple[tuple[Marks, float], ...]:
    """The steps forward a step back of `back` seconds leaves uncorrected: it undoes the latest
    first. A rest within the `jitter` is dropped: no step forward is taken for one that small."""
    kept = list(ahead)
    while kept and back > 0.0:
        since, forward = kept.pop()
        if forward - back > jitter:
            kept.append((since, forward - back))
        back -= forward
    return tuple(kept)


# The clock check's last reading, kept in the store's key/value table for the daemon's next start
# (`gateway.clocksteps.KeptReading`): a step made while the daemon was stopped is then told as one
# made while it ran. A row of its own in an existing table: no schema change, and a restored backup
# brings the reading it was taken with (its wall clock and boot time still differ by the same).
READING_KEY = "clock_reading"
Ahead = tuple[tuple[Marks, float], ...]


@dataclass(frozen=True, slots=True)
class Reading:
    """A look of the clock check: the wall clock, boot time and the highest ids read together, and
    the steps forward no step back has corrected yet (`ClockStep.ahead`)."""

    wall: float
    elapsed: float
    marks: Marks
    ahead: Ahead = ()


def save_reading(conn: sqlite3.Connection, boot: str, reading: Reading) -> None:
    """Keep `reading`, taken in the boot `boot` names. Run inside the caller's write."""
    value = {
        "boot": boot,
        "wall": reading.wall,
        "elapsed": reading.elapsed,
        "marks": _fields(reading.marks),
        "ahead": [[_fields(since), seconds] for since, seconds in reading.ahead],
    }
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (READING_KEY, json.dumps(value)),
    )


def saved_reading(conn: sqlite3.Connection) -> tuple[str, Reading] | None:
    """The boot and the reading kept last; None without one, or with one that cannot be read (the
    first look then takes its own, as a start always did). Read at every start: a value damaged or
    edited by hand, whatever its shape, must not stop the daemon from starting (every start failed
    until the row was deleted), so it is said once and left to be overwritten by the next keep."""
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (READING_KEY,)).fetchone()
    if row is None:
        return None
    try:
        return _read(row[0])
    except Exception as exc:  # any shape: a missing key, 1e400 (OverflowError), deep nesting (RecursionError)
        log.warning("clock.reading_unreadable", error=f"{type(exc).__name__}: {exc}"[:200])
        return None


def _read(text: str) -> tuple[str, Reading]:
    value = json.loads(text)
    boot = str(value["boot"])
    ahead = tuple((_marks(since), float(seconds)) for since, seconds in value["ahead"])
    reading = Reading(float(value["wall"]), float(value["elapsed"]), _marks(value["marks"]), ahead)
    if not all(map(math.isfinite, (reading.wall, reading.elapsed, *(s for _, s in ahead)))):
        raise ValueError("not a finite time")  # nan passes no comparison: no step would ever be seen
    if reading.elapsed < 0.0:
        raise ValueError("boot time before the boot")
    return boot, reading


def _marks(ids: Any) -> Marks:
    """Row ids as SQLite keeps them: one beyond its integers failed every step's search (OverflowError)."""
    values = [int(i) for i in ids]
    if len(values) != len(_STAMPED) or not all(0 <= i < 2**63 for i in values):
        raise ValueError("not a row id per table")
    return Marks(*values)


def shift_parts(conn: sqlite3.Connection, now: float, step: ClockStep) -> int:
    """The wall clock stepped back: move the deadlines of parts stamped before `step` with it.

    A part's next attempt and validity were stamped on the clock before the step; left as they
    are, every part waiting would stay "not due" for as long as the step (an hour's queue
    stalled while new mail overtakes it) and would be given an hour more life than its validity
    promised (the validity also goes to the SMSC as an absolute time, read on the SMSC's clock).
    Both are real-time durations, so they move by the step. A validity moves by what the step
    undoes of the clock its SMS was accepted on (`ClockStep`, by the message's id): when the
    step back corrects a step forward, an SMS accepted before that forward step keeps the
    expiry it was given. The parts of an SMS accepted after the step (before the look that
    found it) were stamped on the stepped clock and keep their times. A part held by quiet
    hours until a time still ahead keeps that time (and so its validity counted from it): quiet
    hours are read off the wall clock by design, also when an account's suspension holds the part.
    Only that hold has a queued part's next attempt ahead of the clock: new, recovered and
    retried parts are queued due at once.

    Its claim times (`parts.claimed_at`, when its submit may have reached the phone, and
    `last_claimed_at`, its last submit's, with `prior_claimed_at`, the one before: the answer wait's,
    `conversations.inflight`) move by the whole step too, as readings of the clock before it. Left
    ahead of the clock, a part cut off before the step and sent again after it held no answer for as
    long as the step: the phone's answer to it, overtaking the SMSC's answer to the re-send, went at
    once to the user of the SMS the phone had before, of whatever company. NULL stays NULL.
    """
    before = now + step.seconds  # the clock's reading without the step
    validity, args = step.back_by("messages", "parts.message_id")
    return conn.execute(
        "UPDATE parts SET next_attempt_at = next_attempt_at - ?, claimed_at = claimed_at - ?,"
        " last_claimed_at = last_claimed_at - ?, prior_claimed_at = prior_claimed_at - ?,"
        f" expires_at = expires_at - ({validity})"
        " WHERE message_id < ?"
        # A part the SMSC took waits for its report until a day after its validity, and one
        # taken without a message id until its validity ends (`expire_due`).
        " AND state IN ('queued', 'deferred', 'active', 'hold', 'submitted')"
        " AND NOT (state = 'queued' AND next_attempt_at > ?)"
        # The same hold under an account's suspension: never tried, due ahead. A retry's
        # wait the suspension held has an attempt behind it and moves.
        " AND NOT (state = 'hold' AND error = ? AND attempts = 0 AND next_attempt_at > ?)",
        (*(step.seconds,) * 4, *args, step.first("messages"), before, SUSPENDED_HOLD, before),
    ).rowcount
