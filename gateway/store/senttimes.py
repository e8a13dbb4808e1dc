"""When each SMS was accepted and went, and when its conversation moved on, after the clock steps back.

An answer from a phone goes to the user whose SMS last reached it (`gateway.conversations.reached`),
told by when each SMS went (`parts.submitted_at`), when its mail was accepted (`messages.created_at`)
and when its conversation last sent (`conversations.last_mt_at`). Left on the clock before a step back,
an SMS sent just before the step reads as sent after one sent just after it: user A texts a phone, NTP
steps the clock back a minute, user B of another company texts the same phone, and once the minute has
passed every answer of the phone, for the whole reply window, went to A, quoting A's SMS, on A's bill.

So they move with the waits and the MOs (in chunks of ids of their own, `gateway.stepmoves`), by the
same rule: a row written before the step (by its message's id, `ClockStep`) moves, one written after it
keeps its time. Each moves by what the step undoes of the clock it was stamped on, as an MO's receipt
does, told by its SMS's id: when it went, and when its conversation last sent, too (a part that went
after a step forward of an SMS accepted before it, within that step of the step back that undoes it,
reads younger by the step forward than it is). A moved acceptance time is the true one: a bill lists the
SMS in the month it was really accepted in (`billing_reports.rebill` bills a month again when one moves
back into it), and an admin's retry's records of it follow it (`mtlate.stepped_back`).

Only what the step can put out of order moves, and what went within the answer's few seconds of it
(`shift_sent`): rows written after the step read at least the clock's reading when it came, less the
step; one stamped earlier than the step plus those seconds before it reads older than any of them
when left, and its window, counted from a time the step has made younger, only longer by the step.
Those of the step's width before that are squeezed together, so that none passes another (`moved_to`).
Moving every row a reply window could reach held the store's one writer, and with it SMTP and SMPP, for
6-8 s at every step of more than 5 s (200,000 SMS in the window).

A step forward moves none of them. Times stamped before it read older by the step, their order kept;
the reply windows count it as no time passed (`gateway.store.forwardsteps`), so an answer to an SMS
sent a minute before a step of 8 days still goes to its user, with no row moved.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable

from gateway.store.clockstep import ClockStep

# `gateway.conversations.reached.REPLY_SECONDS`: an answer this soon after an SMS went is not to it.
# Times this close to the step move exactly, so that an SMS sent just before it reads older than one
# sent just after by what truly passed.
_REPLY_SECONDS = 5.0
# Times of the step's width before those that move by it move into this many seconds after the ones
# left (`moved_to`): no time passes another, and the rows read are the step's and a few seconds more.
_SQUEEZED = 5.0

# The newest SMS of the user's address: how far a time of its adding moves.
_LATEST_OF_USER = (
    "(SELECT MAX(m.id) FROM emails e JOIN messages m ON m.email_id = e.id WHERE users.email = e.mail_from)"
)


def reach(now: float, step: ClockStep, oldest: float | None) -> float:
    """How far back from the clock's reading `now` a reply window can still read: to the oldest
    conversation kept (`oldest`, its last SMS: the retention purge deletes those past their window,
    `gateway.conversations.clockstep.oldest_kept`), and the step. Not the longest an SMS may wait to go
    as well (`reached.HOLD_SECONDS`, 30 days)."""
    return max(now - (now if oldest is None else oldest), 0.0) + step.seconds


def floor_id(conn: sqlite3.Connection, since: float, below: int) -> int:
    """The first message id below `below` accepted at `since` or later, found by halving on the ids (no
    index reads `created_at` alone): they grow with it, as a step back keeps them (`shift_sent`)."""
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
    """The message ids [low, first) whose acceptance times `shift_sent` moves, and the time `since`
    from which times move (to no earlier than it), as of the clock's reading `now` after the step:
    also what billing asks before they move (`rebill`, `mtlate`).

    The step came after the last SMS accepted before it: rows after the step read at least its
    acceptance time less the step. A time stamped `_REPLY_SECONDS` before that or later moves back by
    the step; an earlier one, squeezed towards `since` (`moved_to`), reads before them by more than an
    answer's few seconds."""
    first = step.first("messages")
    row = conn.execute(
        "SELECT created_at FROM messages WHERE id < ? ORDER BY id DESC LIMIT 1", (first,)
    ).fetchone()
    came = now + step.seconds if row is None else min(row[0], now + step.seconds)
    since = came - _REPLY_SECONDS - step.seconds - _SQUEEZED
    return floor_id(conn, since, first), first, since


def moved_to(column: str, step: ClockStep, since: float, row_id: str) -> tuple[str, list[float]]:
    """SQL for where `shift_sent` moves a time `column` from `since` on, stamped on the clock the row of
    `messages` with id `row_id` was written on, and its parameters in order. From the step and
    `_SQUEEZED` after `since` (`moving`: the step's last seconds), back by what the step undoes of that
    clock, as an MO's receipt; before, squeezed into the `_SQUEEZED` after `since`, which meets the
    times moved at the one end and those left at the other. So every time keeps its place among the
    rest: moved by the whole step, one just after a cut read before one just before it, left unmoved
    (a user's SMS, and the answers went for a week to the user whose SMS it had overtaken), and one held
    at the cut tied with the others held there."""
    back, args = step.back_by("messages", row_id)
    share = _SQUEEZED / (step.seconds + _SQUEEZED)
    sql = f"CASE WHEN {column} >= ? THEN {column} - ({back}) ELSE ? + ({column} - ?) * ? END"
    return sql, [since + step.seconds + _SQUEEZED, *args, since, since, share]


def accepted(step: ClockStep, since: float) -> tuple[str, list[float]]:
    """SQL for where `shift_sent` moves an SMS's acceptance time (`moved_to`), and its parameters."""
    return moved_to("created_at", step, since, "id")


def shift_sent(conn: sqlite3.Connection, now: float, step: ClockStep, oldest: float | None) -> int:
    """The wall clock stepped back by `step`: move the acceptance and submit times of SMS accepted before
    it (their conversations' times move by the same rule in the conversations' package,
    `gateway.conversations.clockstep`; `oldest`: the oldest kept one's last SMS, as far back as parts
    are read). Run inside the caller's write, before the
    step's other moves read the clock (`now`, its reading after the step). Returns how many SMS moved.

    Only times from `since` on move (`moving`, `moved_to`), and none passes another: the rows of the
    step's last seconds, a few thousand on a busy gateway, where moving every row a window reaches took
    seconds of the writer. Rows older read younger by the step at most: their window ends later by as
    much, and no answer goes astray for it."""
    low, first, since = moving(conn, now, step)
    # Found on the acceptance times as stamped, before they move: moved, the SMS of the oldest kept
    # conversation fell just below the floor (the step before a conversation time stamped a moment
    # after its SMS's acceptance), and its send time was left a step ahead of the clock.
    oldest_id = floor_id(conn, now + step.seconds - reach(now + step.seconds, step, oldest), first)
    shift_users(conn, now, step, low, first, since)
    return shift_sent_ids(conn, step, since, (low, oldest_id), (min(low, oldest_id), first), step.sent)


def shift_sent_ids(
    conn: sqlite3.Connection,
    step: ClockStep,
    since: float,
    floors: tuple[int, int],
    ids: tuple[int, int],
    sent: Iterable[int],
) -> int:
    """The acceptance times of the SMS with ids in `ids` ([low, high)), and the send times of their
    parts, moved as `shift_sent` moves them (`since`: from where times move; `floors`: the first SMS
    whose acceptance time, and whose parts' send times, the step moves): all at once, or a chunk of a
    move (`gateway.stepmoves`). Parts `sent` after the step carry its clock and keep their times.
    Returns how many SMS moved."""
    low, high = ids
    at, args = accepted(step, since)
    count = conn.execute(
        f"UPDATE messages SET created_at = {at} WHERE id >= ? AND id < ? AND created_at >= ?",
        (*args, max(low, floors[0]), high, since),
    ).rowcount
    # A part of an SMS accepted earlier may have gone within the seconds that move (held, queued behind
    # others): the parts of the SMS a window reaches are read (by their message, no index reads when a
    # part went), only those are written.
    went, args = moved_to("submitted_at", step, since, "message_id")
    conn.execute(
        f"UPDATE parts SET submitted_at = {went}"
        " WHERE message_id >= ? AND message_id < ? AND submitted_at >= ?"
        " AND id NOT IN (SELECT value FROM json_each(?))",
        (*args, max(low, floors[1]), high, since, json.dumps(sorted(set(sent)))),
    )
    return count


def shift_users(
    conn: sqlite3.Connection, now: float, step: ClockStep, low: int, first: int, since: float
) -> None:
    """When each address was added as a user moves if it was added before the step, as its SMS do, and
    before they do (`holding.added_since` compares the two; users carry no id the step is told by):
    left, an SMS of its sent just before or after the step read as sent before the address was added,
    and an answer to it as one to a predecessor's SMS. Before the step for certain: a time of adding
    ahead of the clock now, or before an SMS of the address that moves. A user added after the step
    has only SMS after it, or a predecessor's before it, which stay before."""
    added, args = moved_to("created_at", step, since, _LATEST_OF_USER)
    conn.execute(
        f"UPDATE users SET created_at = {added} WHERE created_at >= ?"
        " AND (created_at > ? OR EXISTS (SELECT 1 FROM emails e JOIN messages m ON m.email_id = e.id"
        " WHERE users.email = e.mail_from"
        " AND e.id >= (SELECT email_id FROM messages WHERE id >= ? ORDER BY id LIMIT 1)"
        " AND m.id >= ? AND m.id < ? AND m.created_at >= users.created_at))",
        (*args, since, now, low, low, first),
    )


def moved_over(conn: sqlite3.Connection, step: ClockStep, at: float) -> bool:
    """Whether `shift_sent` moves an SMS's acceptance from `at` or later to before it: a billed month's
    end, which the SMS then falls back into (`billing_reports.rebill`). Asked before the shift, in its
    write. Only the SMS it moves are read (`moving`; with no SMS before the step, none)."""
    low, first, since = moving(conn, math.inf, step)
    sql, args = accepted(step, since)
    row = conn.execute(
        f"SELECT 1 FROM messages WHERE id >= ? AND id < ? AND created_at >= ? AND {sql} < ? LIMIT 1",
        (low, first, max(at, since), *args, at),
    ).fetchone()
    return row is not None
