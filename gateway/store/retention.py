"""The retention purge (SPEC R-2.5): detailed records of finished mail older than the retention go.

It runs on the event loop in small chunks, each one its own piece of the shared `write()`, and
yields between chunks, so that SMTP accepts, submit answers and DLRs keep being committed (and
acknowledged) while a large purge runs. Each chunk selects and deletes in the same transaction, so
a message an admin re-queued a moment before is never deleted. Monthly usage totals are never purged.
Conversations (R-3) go once their last SMS is older than the retention plus the reply window (the
account's own, if it sets one), so an answer that may still arrive always finds its conversation.
Premium MOs and answers (R-4) are money records and stay; only their texts go (an MO still waiting
for its client keeps its text). Those two are their packages' queries, which the caller passes in
(`gateway.retentionpurge`). A phone's concatenation counter goes with its last message.
A day's usage counter, read only on its own day, goes two days later (`forget_past_days`).

Every chunk reads an index range of old rows only, never the rest of a table: a chunk that walked
by id read every newer row once nothing old was left (0.6 s of the loop on a year of 2 M messages),
and one that sorted its matches read every finished outbox mail first (0.4 s). Where a chunk may
keep rows of its range (an email with an SMS still under way, a conversation of an account with a
longer reply window), it goes on from a cursor past the rows it has looked at, so it never reads
them again, and it looks at `chunk` rows at most whether it deletes them or not.

Yielding one loop turn between chunks was not enough: on a year of traffic (1.2 M mails, 2.7 GB) a
chunk of 100 emails took 56-59 ms of the loop (p99 ~100 ms) and wrote ~4 MB of WAL, and catching up
nine months (after a long stop, or a lowered `retention_days`) ran them back to back for 24 minutes,
intake falling from 60 to 7.8 mails/s (p99 541 ms). So the purge keeps to a duty cycle (`Pace`):
after each chunk it waits `(1 - DUTY) / DUTY` times as long as the chunk took, from asking for its
write to its commit, so it has the loop (and the writer) for at most about `DUTY` of the time. A
catch-up takes longer (95 emails a second under 90 mails/s of intake, 1,075 back to back: some
2-3 hours for eight or nine months); the nightly purge of a day's mail (3,300) ends within a minute.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from gateway.store import forwardsteps
from gateway.store.counted import MO_UNFINISHED_SQL, keep_counted
from gateway.store.db import Store
from gateway.store.settling import FINAL_PART

# Rows per chunk: deleting an email deletes its messages, parts and DLRs, with their dozen indexes.
# On a year of traffic (1.2 M mails, 2.7 GB), chunks timed each in its own fsynced commit on a busy
# two-core machine: 100 emails p50 104 ms, p99 174 ms, 4.2 MB of WAL (56-59 ms p50 on a quieter
# day); 50 emails p50 48 ms, p99 118 ms, 2.2 MB; 25 emails p50 29 ms, p99 68 ms, 1.2 MB.
CHUNK = 25
# The share of the time the purge may take (`Pace`): 9 × a chunk's time to wait after it.
DUTY = 0.1
# A chunk slowed by a stall elsewhere (a checkpoint, a busy disk) waits at most this long after it.
PAUSE_MAX_SECONDS = 2.0

Cursor = tuple[float, int]  # (time, id) of the last row a chunk looked at, in its index's order
START: Cursor = (float("-inf"), 0)
# A feature's share of the purge, given by the caller (`gateway.retentionpurge`) so that the store imports no
# feature and names none of its tables: (connection, cutoff, reply window, cursor, chunk) -> the
# cursor to go on from, None at the end. Each call is one chunk, the store's next write, paced as the rest.
FeaturePurge = Callable[[sqlite3.Connection, float, float, Cursor, int], Cursor | None]
T = TypeVar("T")


class Pace:
    """The purge's duty cycle: each chunk is followed by a pause in proportion to its own time.

    A chunk's time runs from asking for its write to its commit, so it counts the loop's time
    in the chunk, its share of the commit, and the wait behind intake's writes: the busier the
    store, the longer the purge waits. Clock and sleep are injected (tests)."""

    def __init__(
        self,
        duty: float = DUTY,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.duty = duty
        self.monotonic = monotonic
        self.sleep = sleep
        self.chunks = 0
        self.busy = 0.0  # seconds in chunks
        self.paused = 0.0  # seconds waited after them

    async def write(self, store: Store, work: Callable[[], T]) -> T:
        """`work` as the store's next write, then the pause it earned."""
        start = self.monotonic()
        result = await store.write(work)
        took = max(0.0, self.monotonic() - start)
        pause = min(PAUSE_MAX_SECONDS, took * (1 - self.duty) / self.duty)
        self.chunks += 1
        self.busy += took
        self.paused += pause
        await self.sleep(pause)
        return result


_FINAL = f"({', '.join(repr(s) for s in FINAL_PART)})"
# Tables whose every row in the time range goes: each chunk takes the first `chunk` rows of the
# range in its index (mo_received, outbox_age), unordered, so none is read twice. DLRs that matched
# no part are found by dlrs_part (part_id IS NULL), oldest first: only the last chunk reads the
# recent ones, which are few.
_WHOLE_RANGES = (
    ("dlrs", "part_id IS NULL AND received_at < ?"),
    ("mo", "received_at < ?"),
    ("outbox", "state IN ('sent', 'failed') AND created_at < ?"),
)


async def purge_before(
    store: Store,
    cutoff: float,
    *,
    chunk: int = CHUNK,
    reply_window: float = 0.0,
    pace: Pace | None = None,
    unbilled_from: float | None = None,
    features: Sequence[FeaturePurge],
) -> int:
    """Delete finished mail (and its messages, parts, DLRs) received before `cutoff`; return the count.

    The `features` purge their own rows in turn (conversations, kept `reply_window` seconds or their
    account's reply window longer than the rest; premium texts), after the mail and before the
    concatenation counters. Required, not defaulted: a purge that left them out would keep them for good.
    A mail with an SMS that ended at or after `unbilled_from` stays: a report or a retry after its
    month's bill is a correction in the month it ended in, which the first month not billed may be.

    The retention counts the time that passed, as the reply windows do: a step forward of the clock
    since a row was stamped is not (`forwardsteps`). Counted, an SMS sent a day before a step of 8
    days went under a retention of 5, its conversation still answerable. The features get `cutoff`
    as read and count the steps themselves (the conversations' window: `forwardsteps.stepped_since`).
    """
    features_cutoff, cutoff = cutoff, forwardsteps.window_start(store.db.conn, cutoff, 0.0)
    write = (pace or Pace()).write
    removed = 0
    after: Cursor | None = START
    while after is not None:
        count, after = await write(
            store, lambda a=after: _purge_emails(store, cutoff, a, chunk, unbilled_from)
        )
        removed += count
    for table, where in _WHOLE_RANGES:

        def piece(t: str = table, w: str = where) -> int:
            return _purge_rows(store, t, w, (cutoff,), chunk)

        while await write(store, piece) >= chunk:
            pass
    for feature in features:
        after = START
        while after is not None:
            after = await write(
                store, lambda f=feature, a=after: f(store.db.conn, features_cutoff, reply_window, a, chunk)
            )
    rowid = 0
    while rowid := await write(store, lambda a=rowid: _purge_concat_refs(store, a, chunk)):
        pass
    return removed


def _purge_emails(
    store: Store, cutoff: float, after: Cursor, limit: int, unbilled_from: float | None = None
) -> tuple[int, Cursor | None]:
    """The next `limit` emails received before `cutoff` (by emails_received, past `after`); those whose
    messages are all final, none of them since `unbilled_from`, go with their messages, parts, DLRs
    and the records of their retries that billing keeps. Returns (emails deleted, the cursor to go on
    from, or None at the end of the range)."""
    conn = store.db.conn
    ended, since = ("", ()) if unbilled_from is None else (" OR m.finished_at >= ?", (unbilled_from,))
    seen = conn.execute(
        "SELECT e.received_at, e.id, NOT EXISTS ("
        f" SELECT 1 FROM messages m WHERE m.email_id = e.id AND (m.state NOT IN {_FINAL}{ended}))"
        " FROM emails e WHERE e.received_at < ? AND (e.received_at, e.id) > (?, ?)"
        " ORDER BY e.received_at, e.id LIMIT ?",
        (*since, cutoff, *after, limit),
    ).fetchall()
    ids = [email_id for _, email_id, finished in seen if finished]
    if ids:
        marks = ",".join("?" * len(ids))
        msg_ids = f"SELECT id FROM messages WHERE email_id IN ({marks})"
        part_ids = f"SELECT id FROM parts WHERE message_id IN ({msg_ids})"
        # What /metrics counts of them stays counted (`gateway.store.counted`): a part's final state
        # only, as a long SMS that failed may have a part still awaiting its report, a waiting state
        # whose gauge would keep it for good. Its parts read by their message: with the state in the
        # WHERE, SQLite read parts_due's range of every final part instead, the whole history (2.6 M
        # parts) for each chunk, on the loop.
        keep_counted(
            conn,
            "messages",
            f"SELECT COALESCE(account_id, ''), state, COUNT(*) FROM messages WHERE email_id IN ({marks})"
            " GROUP BY 1, 2",
            tuple(ids),
        )
        keep_counted(
            conn,
            "parts",
            "SELECT COALESCE(link, ''), state, COUNT(*) FROM parts INDEXED BY parts_message"
            f" WHERE message_id IN ({msg_ids}) AND state IN {_FINAL} GROUP BY 1, 2",
            tuple(ids),
        )
        conn.execute(f"DELETE FROM dlrs WHERE part_id IN ({part_ids})", ids)
        # `billing_reports.mtlate.retried_key`: a new SMS given a freed id must not inherit them.
        conn.execute(
            "DELETE FROM billing_state WHERE key IN (SELECT 'mt_retried/' || account_id || '/' || id"
            f" FROM messages WHERE email_id IN ({marks}) AND account_id IS NOT NULL)",
            ids,
        )
        conn.execute(f"DELETE FROM parts WHERE message_id IN ({msg_ids})", ids)
        conn.execute(f"DELETE FROM messages WHERE email_id IN ({marks})", ids)
        conn.execute(f"DELETE FROM emails WHERE id IN ({marks})", ids)
    return len(ids), (seen[-1][0], seen[-1][1]) if len(seen) == limit else None


def _purge_rows(store: Store, table: str, where: str, args: tuple[float, ...], limit: int) -> int:
    """Up to `limit` rows matching `where`, all of which go: unordered, so that the planner reads
    them off the time index's range rather than sorting every match (or walking the table) by id."""
    conn = store.db.conn
    ids = [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE {where} LIMIT ?", (*args, limit))]
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    if table == "mo":  # counted by /metrics (smsgw_mo_total); a state not handled yet is a gauge's
        sql = f"SELECT '', state, COUNT(*) FROM mo WHERE id IN ({marks}) AND state NOT IN {MO_UNFINISHED_SQL}"
        keep_counted(conn, "mo", f"{sql} GROUP BY 2", tuple(ids))
    return conn.execute(f"DELETE FROM {table} WHERE id IN ({marks})", ids).rowcount


def _purge_concat_refs(store: Store, after: int, limit: int) -> int:
    """Forget the concatenation counter of phones with no message kept; the rowid to go on from, or 0.

    A reference only has to differ from those a phone may still be joining (minutes), but each
    phone ever sent a long SMS kept its row for ever: a list of numbers beyond the retention.
    """
    conn = store.db.conn
    rows = conn.execute(
        "SELECT rowid, destination FROM concat_refs WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit)
    ).fetchall()
    gone = [
        (rowid,)
        for rowid, phone in rows
        if conn.execute(
            "SELECT 1 FROM messages INDEXED BY messages_recipient_id WHERE recipient = ? LIMIT 1", (phone,)
        ).fetchone()
        is None
    ]
    conn.executemany("DELETE FROM concat_refs WHERE rowid = ?", gone)
    return rows[-1][0] if len(rows) == limit else 0


async def forget_past_days(store: Store, before: str, *, chunk: int = 500, pace: Pace | None = None) -> int:
    """Delete the per-day usage counters and limit notices of days before `before` ("YYYY-MM-DD"),
    and the limit notices of months before its month; return the rows deleted.

    Every accepted mail adds a day's row per user and per account, and only the day's own rows are
    read again (the daily quota, the info reply): the table grew by a row per user and day for ever.
    Not held for billing as `purge_before` is: a bill counts the SMS, never these counters.
    """
    write = (pace or Pace()).write
    month = before[:7]
    removed = 0
    for table, where, args in (
        ("usage", "length(period) = 10 AND period < ?", (before,)),
        ("limit_notices", "length(period) = 10 AND period < ?", (before,)),
        ("limit_notices", "length(period) = 7 AND period < ?", (month,)),
    ):

        def piece(t: str = table, w: str = where, a: tuple[str, ...] = args) -> int:
            return store.db.conn.execute(
                f"DELETE FROM {t} WHERE (scope, period) IN (SELECT scope, period FROM {t} WHERE {w} LIMIT ?)",
                (*a, chunk),
            ).rowcount

        while (count := await write(store, piece)) > 0:
            removed += count
            if count < chunk:
                break
    return removed
