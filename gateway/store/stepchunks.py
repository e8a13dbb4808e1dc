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

import sqlite3

from gateway.store.clockstep import ClockStep


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
