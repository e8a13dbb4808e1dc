"""Parts that wait, unclaimed, for a link of their route to come up.

A part claimed while no link that may take it is up (its operator's link down, another link up) went back
to the queue due a second later, and was claimed and put back again every second for as long as the link
stayed down: a write a second per batch of waiting parts, the whole queue for that operator walked
through the claim again and again (1,000 SMS: some 60,000 part updates a minute), for an hour's outage
with 100,000 queued. Such a part now waits `deferred` with its next attempt at its validity's end
(`QueueRepo.release(at_expiry=True)`): no claim takes it before, the expiry ends it on time with its
bounce as before, and its note says what it waits for (`partnotes.NO_LINK_UP`), for `queue show` and the
expiry's bounce. When a link comes up, the dispatcher makes due, in the write of its next claim, those a
link now up may take (`unpark`): read from the store, so the parts a stop left waiting are found again by
the next start.

The next attempt at the validity's end tells such a part (`gateway.store.queueage.parked`): nothing
else puts a waiting part's next attempt exactly there (a back-off is counted from the refusal). A clock
step moves both times of such a part alike (`clockstep.extend_validities`, `clockstep.shift_parts`), so
that it is still found when its link comes up. A suspension holds it due now
(`PolicyRepo.suspend_account`): held due at its validity's end and never tried, it passed for a
quiet-hours hold, whose release ended its validity; the resume sends it. The queue's age counts it
(`gateway.store.queueage`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TypeVar

import structlog

from gateway.store.db import Store
from gateway.store.queueage import parked

T = TypeVar("T")
# Whether a link up may take a part to this number, pinned to this link (`LinkChoice.could_go`).
CouldGo = Callable[[str, str | None], bool]

log = structlog.get_logger(__name__)

# The parts waiting so (put back by `QueueRepo.release(at_expiry=True)`), as a condition on `parts`
# (`gateway.store.queueage.parked`).
PARKED = parked()
# Waiting parts looked at in one write once a link came up (`unpark`).
UNPARK_ROWS = 2000


def unpark(
    conn: sqlite3.Connection, could_go: CouldGo, now: float, after: tuple[float, int], most: int
) -> tuple[int, tuple[float, int] | None]:
    """Inside a store write: of the parts waiting for a link past `after` (their next attempt,
    their id), in that order, the next UNPARK_ROWS are looked at, and up to `most` of them that a link
    up may take now, by their number and pinned link (`LinkChoice.could_go`), are due at `now`.
    Returns how many, and where the next call goes on (None: none left). A batch a write: 100,000 parts
    at once held the event loop 1.2 s; and no more than the claim in the same write takes, so that the
    first submit after a link came up waits for no more (2,000 made due at once added some 10 ms)."""
    rows = conn.execute(
        "SELECT next_attempt_at, id, destination, via FROM parts INDEXED BY parts_due"
        f" WHERE {PARKED} AND (next_attempt_at, id) > (?, ?)"
        " ORDER BY next_attempt_at, id LIMIT ?",
        (*after, UNPARK_ROWS),
    ).fetchall()
    on = (rows[-1][0], rows[-1][1]) if len(rows) == UNPARK_ROWS else None
    ids: list[int] = []
    for due, part_id, destination, via in rows:
        if could_go(destination, via):
            ids.append(part_id)
            if len(ids) == most:
                on = (due, part_id)  # the rest next time
                break
    if not ids:
        return 0, on
    woken = conn.execute(
        # `+`: the ids looked up by rowid; on the state index this walked every deferred part.
        "UPDATE parts SET next_attempt_at = ? WHERE id IN (SELECT value FROM json_each(?))"
        f" AND {parked('+')}",
        (now, json.dumps(ids)),
    ).rowcount
    return woken, on


class Unparking:
    """The dispatcher's walk through the parts waiting for a link, a batch in each of its claims, from
    the start again whenever a link comes up (`came_up`)."""

    def __init__(self, store: Store, could_go: CouldGo) -> None:
        self.store = store
        self.could_go = could_go
        self.after: tuple[float, int] | None = None  # where the walk goes on; None: no walk

    def came_up(self, now: float) -> None:
        """A link came up: every waiting part may now have one."""
        self.after = (now, 0)

    def claiming(self, now: float, limit: int, claim: Callable[[], T]) -> Callable[[], T]:
        """The claim of `limit` parts (`gateway.claims.claimer`) as a store write that first makes due
        the next batch of waiting parts a link up may take, as many as it claims: claimed in the same
        write, with no delay and no write more. Unchanged with no walk under way."""
        after = self.after
        if after is None:
            return claim

        def write() -> T:
            woken, self.after = unpark(self.store.db.conn, self.could_go, now, after, limit)
            if woken:
                log.info("mt.link_waits_ended", parts=woken)
            return claim()

        return write
