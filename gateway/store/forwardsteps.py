"""The steps forward of the wall clock, kept so that a window counting back from the clock counts only
the time that passed.

A step forward of days (NTP correcting a clock that was behind, an admin setting the date) makes
every time stamped before it read older by the step: an answer to an SMS sent a minute before a step
of 8 days read as 8 days late, past a 7-day reply window, and went to the fallback address. Moving
every row a window reaches forward with the step held the store's one writer, and with it SMTP and
SMPP, for seconds on a big store. Instead each step is kept here, in the step's write (`record_forward`,
a few dozen bytes), and a window's start moves back by the steps made within it (`stepped_since`):
what was stamped before such a step is that much younger than it reads, and what was stamped after it
is later than the start anyway. A step back that corrects one (`record_back`) undoes it, as it undoes
the steps forward the validities were moved by (`clockstep.left_ahead`).

Each step is kept as the clock's reading when the look found it, on the clock as it reads now (a later
step forward adds to it, a step back takes from it), its seconds, and the earliest reading the stepped
clock can have had (the look before's, stepped). A window whose start falls between the two counts the
step (`stepped_since`): what was stamped before the step is younger by it, what was stamped after it
at most a look's seconds older than the window. A time stamped there, though, was stamped after the
step: the ages of rows (`row_steps`: the queue's oldest SMS, the outbox's oldest mail) count the steps
kept after the earliest reading only. Counted from the look's reading, an SMS accepted on the stepped
clock in the seconds before the look had the step added to its acceptance: its age read minus 8 days
after a step of 8 days, and the queue that held it was not said stuck for those 8 days. Kept in the
store's key/value table beside the clock check's reading: no schema change, and read by the SQL that
asks (one row by its key).
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

FORWARD_KEY = "clock_forward"
# Steps kept, the newest: more than this within a window is a clock gone wild, and the oldest of them
# count for the windows that still reach back past them only.
KEPT = 16
# The unreadable values said so far in this process (one or two: each is a hand's edit).
_SAID: set[str] = set()


def kept_steps(conn: sqlite3.Connection) -> list[tuple[float, float]]:
    """(when the look found it, seconds) of each step forward kept, oldest first: for the windows."""
    return [(at, seconds) for at, seconds, _ in _kept(conn)]


def row_steps(conn: sqlite3.Connection) -> list[tuple[float, float]]:
    """(the earliest reading of the clock after it, seconds) of each step forward kept, oldest first:
    for the age of a row (`seconds_after` of its stamp), which a step found after it was stamped on
    the stepped clock does not count."""
    return [(since, seconds) for _, seconds, since in _kept(conn)]


def _kept(conn: sqlite3.Connection) -> list[tuple[float, float, float]]:
    """(at, seconds, since) of each step kept; none from a value that cannot be read. A step kept
    before the earliest reading was (two numbers) reads it as its look's reading."""
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (FORWARD_KEY,)).fetchone()
    if row is None:
        return []
    try:
        steps = [
            (float(step[0]), float(step[1]), float(step[2] if len(step) == 3 else step[0]))
            for step in _pairs(row[0])
        ]
        if not all(math.isfinite(value) for step in steps for value in step):
            raise ValueError("not a finite time")
        return steps
    except Exception as exc:  # a value edited by hand: the windows count from the clock, as before
        if row[0] not in _SAID:  # read at every status, /healthz and dashboard poll: said once a process
            import structlog  # here: `smsgw --help` and the premium CLI import this module, not logging

            _SAID.add(row[0])
            error = f"{type(exc).__name__}: {exc}"[:200]
            structlog.get_logger(__name__).warning("clock.forward_steps_unreadable", error=error)
        return []


def _pairs(value: str) -> list[list[Any]]:
    steps = json.loads(value)
    if not isinstance(steps, list) or not all(isinstance(s, list) and len(s) in (2, 3) for s in steps):
        raise ValueError("not a list of steps")
    return steps


def _save(conn: sqlite3.Connection, steps: list[tuple[float, float, float]]) -> None:
    value: Any = [[at, seconds, since] for at, seconds, since in steps[-KEPT:]]
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (FORWARD_KEY, json.dumps(value)),
    )


def record_forward(conn: sqlite3.Connection, at: float, seconds: float, since: float | None = None) -> None:
    """The clock stepped forward by `seconds`, found by the look reading `at` (at most a look's few
    seconds late, which counts a step just past a window's start for it); `since`, the earliest reading
    the stepped clock can have had (`at` when not given): a row stamped from it on came after the step.
    Run inside the step's write."""
    earlier = [(when + seconds, forward, low + seconds) for when, forward, low in _kept(conn)]
    _save(conn, [*earlier, (at, seconds, at if since is None else min(since, at))])


def record_back(conn: sqlite3.Connection, seconds: float) -> None:
    """The clock stepped back by `seconds`: it undoes the latest steps forward first, and the rest read
    that much earlier. Run inside the step's write."""
    steps = _kept(conn)
    if not steps:
        return
    back = seconds
    while steps and back > 0.0:
        at, forward, since = steps.pop()
        if forward > back:
            steps.append((at, forward - back, since))
        back -= forward
    _save(conn, [(at - seconds, forward, since - seconds) for at, forward, since in steps])


def seconds_after(steps: list[tuple[float, float]], at: float) -> float:
    """The seconds of `steps` (as `kept_steps` reads them, or `row_steps` for a row's age) made after
    `at`, as `stepped_since` counts them: for checks of many rows in Python, the steps read once."""
    return sum(seconds for when, seconds in steps if when > at)


def stepped_since(since: str) -> str:
    """SQL for a window's start, `since` (an SQL expression: the clock's reading less the window, read
    once), moved back by the seconds of each step forward made after it. A time stamped before such a
    step is younger by it than it reads; one stamped before a step made before the start is older than
    the window on any count (each step's time reads on the clock as it reads now, later steps added).
    The steps are few, in one row read by its key."""
    # A value damaged or edited by hand reads as no step: it must not fail every answer's match.
    kept = (
        "SELECT SUM(json_extract(j.value, '$[1]')) FROM billing_state b,"
        " json_each(CASE WHEN json_valid(b.value) THEN b.value ELSE '[]' END) j"
        f" WHERE b.key = '{FORWARD_KEY}' AND json_extract(j.value, '$[0]') > x.s"
    )
    return f"(SELECT x.s - COALESCE(({kept}), 0) FROM (SELECT {since} AS s) x)"


def window_start(conn: sqlite3.Connection, now: float, window: float) -> float:
    """A window of `window` seconds back from `now`, where it starts: as `stepped_since` reads it in SQL,
    for the checks made in Python (a conversation's state as listed, the kept answers' window)."""
    return float(conn.execute(f"SELECT {stepped_since('? - ?')}", (now, window)).fetchone()[0])


def window_end(conn: sqlite3.Connection, at: float, window: float) -> float:
    """When `at` falls out of a window of `window` seconds, as `past` will read it then: the latest
    start `s` of the window with `s` less the steps kept after it not past `at`. A step made after
    `at` moves the end by its seconds; what a command shows ("answerable until …") is then what the
    daemon will do, not a time the step made days early."""
    steps = sorted(kept_steps(conn))
    start = at + sum(seconds for _, seconds in steps)  # before the first step kept: all of them after it
    for i, (when, _) in enumerate(steps):
        after = at + sum(seconds for _, seconds in steps[i + 1 :])  # a start from this step on
        if after < when:
            break
        start = after
    else:
        return start + window
    return min(start, math.nextafter(steps[i][0], -math.inf)) + window  # at that step's time it drops


def past(conn: sqlite3.Connection, at: float, now: float, window: float) -> bool:
    """Whether `at` is before a window of `window` seconds back from `now`, a step forward within it
    counting as no time passed; the kept steps read only for a time the clock alone puts past it (a
    check made for every answer, most of them well inside their window)."""
    return at < now - window and at < window_start(conn, now, window)
