"""When a conversation last sent and began, after the clock steps back: moved by the rule of its SMS's
times (`gateway.store.senttimes`), by the step's last seconds only, in chunks of ids
(`gateway.stepmoves`). Left on the clock before the step, a conversation whose SMS went just before it
read as newer than one whose SMS went just after, and the phone's answers went to the wrong user for the
whole reply window. Here because the conversations are this package's table, which the store does not
name (`tests/test_feature_boundaries.py`).
"""

from __future__ import annotations

import sqlite3

from gateway.store.clockstep import ClockStep
from gateway.store.senttimes import moved_to

# The newest SMS of a conversation: the clock its times were stamped on (`ClockStep.back_by`).
_CONVERSATION_SMS = (
    "(SELECT MAX(m.id) FROM messages m JOIN emails e ON e.id = m.email_id"
    " WHERE m.recipient = conversations.phone AND e.mail_from = conversations.user_email)"
)


def oldest_kept(conn: sqlite3.Connection) -> float | None:
    """The last SMS of the oldest conversation kept: how far back a reply window still reads (the
    retention purge deletes conversations past their window), and so which parts' send times a step may
    have to move (`senttimes.shift_sent`)."""
    return conn.execute("SELECT MIN(last_mt_at) FROM conversations").fetchone()[0]


def shift_ids(
    conn: sqlite3.Connection, step: ClockStep, since: float, first: int, ids: tuple[int, int]
) -> int:
    """The conversations of `ids` ([low, high)) last written before the step moved, by the rule of
    their SMS's times (`since`, `first`: as `senttimes.moving` read them before the step's first move,
    `gateway.stepmoves`). A conversation written for a mail accepted after the step keeps its times
    (its last SMS came after it; a few such rows, read by the messages' ids). Returns how many moved."""
    last, args = moved_to("last_mt_at", step, since, _CONVERSATION_SMS)
    began, began_args = moved_to("started_at", step, since, _CONVERSATION_SMS)
    return conn.execute(
        f"UPDATE conversations SET last_mt_at = {last},"
        f" started_at = CASE WHEN started_at >= ? THEN {began} ELSE started_at END"
        " WHERE id >= ? AND id < ? AND last_mt_at >= ? AND (phone, user_email) NOT IN (SELECT m.recipient,"
        " e.mail_from FROM messages m JOIN emails e ON e.id = m.email_id WHERE m.id >= ?)",
        (*args, since, *began_args, *ids, since, first),
    ).rowcount


def moving_ids(conn: sqlite3.Connection, since: float) -> tuple[int, int]:
    """The ids of the conversations a step may move ([low, high)): those last written from `since` on."""
    low, high = conn.execute(
        "SELECT MIN(id), MAX(id) FROM conversations WHERE last_mt_at >= ?", (since,)
    ).fetchone()
    return (0, 0) if low is None else (int(low), int(high) + 1)
