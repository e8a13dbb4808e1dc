"""When each SMS was accepted and went, and when its conversation moved on, after the clock steps back.

An answer from a phone goes to the user whose SMS last reached it (`gateway.conversations.reached`),
told by when each SMS went (`parts.submitted_at`), when its mail was accepted (`messages.created_at`)
and when its conversation last sent (`conversations.last_mt_at`). Left on the clock before a step back,
an SMS sent just before the step reads as sent after one sent just after it: user A texts a phone, NTP
steps the clock back a minute, user B of another company texts the same phone, and once the minute has
passed every answer of the phone, for the whole reply window, went to A, quoting A's SMS, on A's bill.

So they move in the housekeeping's write that moves the waits and the MOs, by the same rule: a row
written before the step (by its message's id, `ClockStep`) moves, one written after it keeps its time.
An acceptance moves by what the step undoes of the clock it was stamped on, as an MO's receipt does.
When an SMS went and when its conversation sent move with a step forward too (`extend_sent`: the clock
taken to have been behind, as for validities), so back by the whole step, as validities do. A moved
acceptance time is the true one: a bill lists the SMS in the month it was really accepted in
(`billing_reports.rebill` bills a month again when one moves back into it), and an admin's retry's
records of it follow it (`mtlate.stepped_back`).

Only what a reply window can still reach moves (back to the oldest conversation kept, widened by the
step): an older row is history, and rewriting every row of the messages table would hold the store's
one writer for as long. Rewriting those rows is what a step costs: 200,000 SMS and as many
conversations in the window took 6-8 s of one write (a loaded machine), on a step seen once, where
left unmoved a step of a minute misrouted answers for the whole window.
"""

from __future__ import annotations

import sqlite3

from gateway.store.clockstep import ClockStep, Marks, extend_validities

# The newest SMS of the user's address: how far a time of its adding moves.
_LATEST_OF_USER = (
    "(SELECT MAX(m.id) FROM emails e JOIN messages m ON m.email_id = e.id WHERE users.email = e.mail_from)"
)
# The (phone, user) of each mail accepted since a message id: conversations written since.
_AFTER_STEP = (
    "SELECT DISTINCT m.recipient, e.mail_from FROM messages m JOIN emails e ON e.id = m.email_id"
    " WHERE m.id >= ?"
)


def reach(conn: sqlite3.Connection, now: float, step: ClockStep) -> float:
    """How far back from the clock's reading before the step (`now`) rows move: to the oldest
    conversation kept (the retention purge deletes those past their window, `queries.purge_old`), and
    the step. Not the longest an SMS may wait to go as well (`reached.HOLD_SECONDS`, 30 days), which
    the answer's scan reads back: that many more rows of a busy gateway would hold the writer for a
    minute, for SMS older than any window, but one held past its window that went just before the step."""
    oldest = conn.execute("SELECT MIN(last_mt_at) FROM conversations").fetchone()[0]
    return max(now - (now if oldest is None else oldest), 0.0) + step.seconds


def floor_id(conn: sqlite3.Connection, since: float, below: int) -> int:
    """The first message id below `below` accepted at `since` or later, found by halving on the ids (no
    index reads `created_at` alone): they grow with it, but for earlier steps, which the reach covers."""
    low = conn.execute("SELECT MIN(id) FROM messages").fetchone()[0]
    if low is None:
        return below
    high = below
    while low < high:
        mid = (low + high) // 2
        row = conn.execute(
            "SELECT id, created_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1", (mid,)
        ).fetchone()
        if row is None or row[0] >= below:
            high = mid
        elif row[1] >= since:
            high = mid
        else:
            low = row[0] + 1
    return low


def moving(conn: sqlite3.Connection, now: float, step: ClockStep) -> tuple[int, int, float]:
    """The message ids [low, first) whose times `shift_sent` moves, and the oldest time it moves, as of
    the clock's reading `now` after the step: also what billing asks before they move (`rebill`)."""
    first = step.first("messages")
    before = now + step.seconds  # the clock's reading without the step
    since = before - reach(conn, before, step)
    return floor_id(conn, since, first), first, since


def shift_sent(conn: sqlite3.Connection, now: float, step: ClockStep) -> int:
    """The wall clock stepped back by `step`: move the acceptance and submit times of SMS accepted before
    it, and the times of conversations last written before it. Run inside the caller's write, before the
    step's other moves read the clock (`now`, its reading after the step). Returns how many SMS moved."""
    low, first, since = moving(conn, now, step)
    if low >= first:
        return 0
    _shift_users(conn, now, step, low, first, since)
    back, args = step.back_by("messages", "id")
    moved = conn.execute(
        f"UPDATE messages SET created_at = created_at - ({back}) WHERE id >= ? AND id < ?",
        (*args, low, first),
    ).rowcount
    # Moved by a step forward (`extend_sent`): back by the whole step, as validities are.
    conn.execute(
        "UPDATE parts SET submitted_at = submitted_at - ? WHERE message_id >= ? AND message_id < ?"
        " AND submitted_at NOTNULL",
        (step.seconds, low, first),
    )
    # A row written for a mail accepted after the step keeps its times (put back: those are few, and a
    # look for a later mail at every row of the table held the writer for seconds).
    after = conn.execute(_AFTER_STEP, (first,)).fetchall()
    sql = "UPDATE conversations SET last_mt_at = last_mt_at - ?, started_at = started_at - ? WHERE"
    conn.execute(f"{sql} last_mt_at >= ?", (step.seconds, step.seconds, since))
    conn.executemany(
        f"{sql} phone = ? AND user_email = ?", [(-step.seconds, -step.seconds, *r) for r in after]
    )
    return moved


def extend_sent(conn: sqlite3.Connection, seconds: float, first: int, now: float) -> None:
    """The wall clock stepped forward by `seconds` that did not pass (`clockstep.extend_validities`, the
    same reading: a clock that was behind): when the SMS accepted before it (ids below `first`) went, and
    when the conversations last written before it sent, move with it. Left, an answer a minute after
    the step to an SMS sent a minute before it went to the fallback address as past its reply window
    ("8 days ago") after a step of 8 days, or went to an older SMS's user after a step of an hour.
    Times stamped after the step read at least the clock before it plus the step: those before it read
    at most the clock now less the step (`before`). When each was accepted stays: a bill lists an SMS in
    the month its acceptance read, the one a bill may have gone out for. Run inside the caller's write."""
    before = now - seconds
    since = before - reach(conn, before, ClockStep(seconds, Marks()))
    low = floor_id(conn, since, first)
    conn.execute(
        "UPDATE parts SET submitted_at = submitted_at + ? WHERE message_id >= ? AND message_id < ?"
        " AND submitted_at <= ?",
        (seconds, low, first, before),
    )
    conn.execute(
        "UPDATE conversations SET last_mt_at = last_mt_at + ?1, started_at = started_at + ?1"
        " WHERE last_mt_at >= ?2 AND last_mt_at <= ?3",
        (seconds, since, before),
    )


def step_forward(conn: sqlite3.Connection, seconds: float, first: int, now: float) -> int:
    """A step forward of `seconds` (`gateway.housekeeping`): validities (`extend_validities`) and the
    times of SMS and conversations (`extend_sent`) of rows before `first` move with it. Returns how
    many parts' validities moved. Run inside the caller's write."""
    extend_sent(conn, seconds, first, now)
    return extend_validities(conn, seconds, first, now)


def _shift_users(
    conn: sqlite3.Connection, now: float, step: ClockStep, low: int, first: int, since: float
) -> None:
    """When each address was added as a user moves if it was added before the step, as its SMS do, and
    before they do (`holding.added_since` compares the two; users carry no id the step is told by):
    left, an SMS of its sent just before or after the step read as sent before the address was added,
    and an answer to it as one to a predecessor's SMS. Before the step for certain: a time of adding
    ahead of the clock now, or before an SMS of the address that moves. A user added after the step
    has only SMS after it, or a predecessor's before it, which stay before."""
    back, args = step.back_by("messages", _LATEST_OF_USER)
    conn.execute(
        f"UPDATE users SET created_at = created_at - ({back}) WHERE created_at >= ? AND (created_at > ? OR"
        " EXISTS (SELECT 1 FROM emails e JOIN messages m ON m.email_id = e.id WHERE users.email = e.mail_from"
        " AND e.id >= (SELECT email_id FROM messages WHERE id >= ? ORDER BY id LIMIT 1)"
        " AND m.id >= ? AND m.id < ? AND m.created_at >= users.created_at))",
        (*args, since, now, low, low, first),
    )


def moved_over(conn: sqlite3.Connection, step: ClockStep, at: float) -> bool:
    """Whether `shift_sent` moves an SMS's acceptance from `at` or later to before it: a billed month's
    end, which the SMS then falls back into (`billing_reports.rebill`). Asked before the shift, in its
    write. Only SMS accepted since `at` are read, and only those within the step of it can cross."""
    first = step.first("messages")
    back, args = step.back_by("messages", "id")
    row = conn.execute(
        f"SELECT 1 FROM messages WHERE id >= ? AND id < ? AND created_at >= ? AND created_at - ({back}) < ?"
        " LIMIT 1",
        (floor_id(conn, at, first), first, at, *args, at),
    ).fetchone()
    return row is not None
