"""An SMS to a phone (MT) of a billed month whose outcome changed after the bill: correction lines.

A month's bill shows each MT as it stood when the bill was first written to be mailed (`as_of`,
recorded before its rows are read), and so does the month written again: one still waiting for its
report then is listed `pending`. When it ends later (its report comes after 00:05 on the 1st, a bulk
SMS held over the month end by quiet hours or a link down goes, it expires), the month it ends in
lists two lines of its kind, as a premium MO's correction does: one taking it back under the status
it was billed with (negative sms and parts) and one under its new status, both with the reason
`correction of the SMS of <date> <time> to <phone> (billed in YYYY-MM): <old> then <new>, <why>`.

An admin's retry queues the MT's ended parts again; those of them that reach the SMSC are paid for
again, which is known when the attempt the retry began ends. One that ended before its month's bill
adds them to the MT's line in that bill. After it: the retry's month lists a pair taking back the
outcome billed and booking it `pending` (the same parts), and the month the attempt ends in a pair
booking that end with the parts that went added (or, cut short by another retry, that retry's
pair adds them). So whatever the SMSC was paid for is on exactly one bill, and the status counts of
the months add up.

No schema change: the row keeps being changed in place; the outcome billed is the row as of the
bill's time (`finished_at` no later than it), and a retry, which resets the row, first keeps what it
resets in billing_state (`retried`), as the months' times are kept there: under the account, so
that a month's run reads only that account's records by a range of the key, with the MT's
`created_at`, as an id a purge freed is given again, and deleted with the MT by the purge (which
keeps an MT that ended in a month not billed yet: `gateway.store.retention`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import structlog

from billing_reports.monthly import MT, PREMIUM_ANSWER, Line, Month, mt_reason, mt_status
from gateway.premium.queries import answer_join
from gateway.store import senttimes
from gateway.store.clockstep import ClockStep

AS_OF_PREFIX = "mt_as_of/"  # + YYYY-MM: `<unix time of the bill> <month start> <month end>`
RETRIED_PREFIX = "mt_retried/"  # + account id / message id: the MT's retries, as JSON
RANK = 5  # after the other kinds at the same second
# How long before a month an MT billed pending may have been accepted and still end in it: the
# longest validity (720 h) after the bill of the month before, with room for an expiry swept late.
_LOOK_BACK_MONTHS = 2
_BATCH = 900  # ids a query names, under SQLite's default limit of 999 variables

log = structlog.get_logger()


def _span(conn: sqlite3.Connection, prefix: str) -> Iterator[tuple[str, str]]:
    yield from conn.execute(
        "SELECT key, value FROM billing_state WHERE key >= ? AND key < ? ORDER BY key",
        (prefix, prefix[:-1] + "0"),
    )


def record_as_of(conn: sqlite3.Connection, month: Month, tz: ZoneInfo, now: float) -> bool:
    """Before the rows of a bill that goes out are read (the scheduled run, `billing run --send`):
    the time its MTs are billed as of. The first bill's stays: the month written again, or mailed
    again, shows what the account and the operator hold, and later changes are corrections.
    True if this call recorded it."""
    start, end = month.bounds(tz)
    return (
        conn.execute(
            "INSERT INTO billing_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
            (f"{AS_OF_PREFIX}{month}", f"{now!r} {start!r} {end!r}"),
        ).rowcount
        > 0
    )


def forget_as_of(conn: sqlite3.Connection, month: Month) -> None:
    """A bill time `record_as_of` recorded for a run that did not write the whole month."""
    conn.execute("DELETE FROM billing_state WHERE key = ?", (f"{AS_OF_PREFIX}{month}",))


def _times(conn: sqlite3.Connection) -> list[tuple[float, float, float]]:
    """(bill time, month start, month end) of every month billed since they were recorded."""
    return [tuple(float(v) for v in value.split()) for _k, value in _span(conn, AS_OF_PREFIX)]  # type: ignore[misc]


def _bill_time(times: list[tuple[float, float, float]], created_at: float) -> float | None:
    return next((t for t, start, end in times if start <= created_at < end), None)


def retried_key(account_id: int, message_id: int) -> str:
    return f"{RETRIED_PREFIX}{account_id}/{message_id}"


def _mine(value: str | list[dict[str, Any]], created_at: float) -> list[dict[str, Any]]:
    """The records of the MT made at `created_at`: none if they are another's whose id was given again."""
    records: list[dict[str, Any]] = json.loads(value) if isinstance(value, str) else value
    return records if records and records[0].get("c") == created_at else []


def _account_records(conn: sqlite3.Connection, account_id: int) -> dict[int, str]:
    """The account's records by message id, unparsed: a range of billing_state's key."""
    prefix = f"{RETRIED_PREFIX}{account_id}/"
    return {int(k.removeprefix(prefix)): v for k, v in _span(conn, prefix)}


def as_billed(
    bill_time: float | None, status: str, reason: str, finished_at: float | None
) -> tuple[str, str]:
    """An MT's status and reason as of its month's bill (`bill_time` None: not recorded, as it is).
    `pending` has no reason: a state's reason before its end (held by the admin) is kept nowhere, so
    the month written again after it ended could not say it, and would differ from the file mailed."""
    if status == "pending" or (bill_time is not None and finished_at is not None and finished_at > bill_time):
        return "pending", ""
    return status, reason


def _reached(conn: sqlite3.Connection, last: dict[int, list[int]]) -> dict[int, int]:
    """How many of the parts each MT's last retry queued again have reached the SMSC so far (a submit
    sets `submitted_at`, a retry clears it), by message id; in batches under SQLite's 999 variables."""
    found: dict[int, int] = {}
    ids = [mid for mid, seqs in last.items() if seqs]
    for i in range(0, len(ids), _BATCH):
        batch = ids[i : i + _BATCH]
        marks = ",".join("?" * len(batch))
        for mid, seq in conn.execute(
            f"SELECT message_id, seq FROM parts WHERE message_id IN ({marks}) AND submitted_at IS NOT NULL",
            batch,
        ):
            found[mid] = found.get(mid, 0) + (seq in last[mid])
    return found


def retried(conn: sqlite3.Connection, message_id: int, now: float) -> None:
    """In an admin's retry of the MT, before its rows are reset, whether its month was billed or not:
    how the attempt it ends stood (status, reason, end, and how many of the parts the retry before
    it queued had reached the SMSC: only those were paid for again), and the parts it queues again.
    A part cancelled while queued, or refused at its submit, never went; when those this retry
    queues go is known when its attempt ends (`_reached`), read then or at the next retry."""
    row = conn.execute(
        "SELECT created_at, state, reason, finished_at, account_id FROM messages WHERE id = ?",
        (message_id,),
    ).fetchone()
    if row is None or row[4] is None:
        return  # no account, no bill
    seqs = [
        seq
        for (seq,) in conn.execute(
            "SELECT seq FROM parts WHERE message_id = ?"
            " AND state IN ('hold', 'failed', 'expired', 'cancelled', 'deferred', 'queued') ORDER BY seq",
            (message_id,),
        )
    ]
    if not seqs:
        return  # nothing is reset: the row stays as billed
    key = retried_key(row[4], message_id)
    stored = conn.execute("SELECT value FROM billing_state WHERE key = ?", (key,)).fetchone()
    records = _mine(stored[0], row[0]) if stored else []
    reached = _reached(conn, {message_id: records[-1].get("q", [])}).get(message_id, 0) if records else 0
    records.append(
        {"r": now, "c": row[0], "s": mt_status(row[1]), "why": mt_reason(row[1], row[2]), "f": row[3],
         "m": reached, "q": sorted({*seqs, *_on_the_way(conn, message_id, records, seqs)})}
    )  # fmt: skip
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(records)),
    )


def _on_the_way(
    conn: sqlite3.Connection, message_id: int, records: list[dict[str, Any]], seqs: list[int]
) -> list[int]:
    """The parts the retry before queued that have not reached the SMSC and this one does not reset:
    claimed, on their way to it. Their submit ends no attempt of theirs, so this one's record counts it."""
    queued = [s for s in (records[-1].get("q", []) if records else []) if s not in seqs]
    if not queued:
        return []
    marks = ",".join("?" * len(queued))
    return [
        seq
        for (seq,) in conn.execute(
            f"SELECT seq FROM parts WHERE message_id = ? AND seq IN ({marks}) AND submitted_at IS NULL",
            (message_id, *queued),
        )
    ]


class Billed:
    """How an account's MT lines of a month read as billed: the bill's time and the retries' records."""

    def __init__(self, conn: sqlite3.Connection, account_id: int, month: Month, tz: ZoneInfo) -> None:
        start, end = month.bounds(tz)
        self.bill_time = _bill_time(_times(conn), start)
        self.records: dict[int, list[dict[str, Any]]] = {}
        for mid, value in _account_records(conn, account_id).items():
            records: list[dict[str, Any]] = json.loads(value)
            if records and start <= records[0].get("c", 0.0) < end:
                self.records[mid] = records
        self.reached = _reached(conn, {mid: r[-1].get("q", []) for mid, r in self.records.items()})

    def line(
        self, mid: int, created_at: float, status: str, reason: str, finished_at: float | None, parts: int
    ) -> tuple[str, str, int]:
        """(status, reason, parts) billed: with the parts sent again that reached the SMSC in attempts
        ended before the bill."""
        records = _mine(self.records.get(mid, []), created_at)
        if not records:
            return (*as_billed(self.bill_time, status, reason, finished_at), parts)
        last = self.reached.get(mid, 0)
        tries = attempts(records, status, reason, finished_at, last)
        _k, billed, why, parts = bill(tries, self.bill_time, parts)
        return billed, why, parts


class Attempt(NamedTuple):
    """One attempt of an MT: the first, or one a retry queued; `retried` the retry that ended it."""

    status: str
    why: str
    finished: float | None
    reached: int  # parts it sent again that reached the SMSC (the first's are its parts_total)
    retried: float | None


def attempts(
    records: list[dict[str, Any]], status: str, why: str, finished_at: float | None, reached: int
) -> list[Attempt]:
    """The MT's attempts: those its retries ended, as each retry recorded it, and the one under way."""
    ended = [Attempt(r["s"], r["why"], r["f"], r.get("m", 0), r["r"]) for r in records]
    return [*ended, Attempt(status, why, finished_at, reached if records else 0, None)]


def bill(tries: list[Attempt], bill_time: float | None, parts: int) -> tuple[int, str, str, int]:
    """(the attempt under way at the bill, status and reason billed, parts billed): the parts of the
    MT and those that attempts ended before the bill sent again to the SMSC."""
    for k, a in enumerate(tries):
        if a.retried is not None and (bill_time is None or a.retried <= bill_time):
            parts += a.reached
            continue
        status, why = as_billed(bill_time, a.status, a.why, a.finished)
        return k, status, why, parts + (a.reached if _counted(a, status, bill_time) else 0)
    raise AssertionError("the last attempt is never retried")


def _counted(a: Attempt, status: str, bill_time: float | None) -> bool:
    """Whether the bill holds the parts the attempt sent again: once it has ended by then, whatever it
    ended as. One the SMSC took but never reported on ends `unreported`, billed `pending`, and the SMSC
    was paid for its submits all the same."""
    return status != "pending" or (a.finished is not None and (bill_time is None or a.finished <= bill_time))


_COLUMNS = (
    "SELECT m.id, m.created_at, COALESCE(u.email, lower(e.mail_from)), m.source, m.recipient, m.parts_total,"
    " m.state, m.reason, m.finished_at, pa.id FROM messages m {index} JOIN emails e ON e.id = m.email_id"
    " LEFT JOIN users u ON u.id = e.user_id" + answer_join("m", "pa")
)


def lines(conn: sqlite3.Connection, account_id: int, month: Month, tz: ZoneInfo) -> list[Line]:
    """The account's MT correction lines of the month, in time order: few (an MT pending at a month's
    end, one retried), so held in full."""
    start, end = month.bounds(tz)
    times = _times(conn)
    if not times:
        return []
    retries = {mid: json.loads(v) for mid, v in _account_records(conn, account_id).items()}
    found: list[tuple[float, int, int, Line]] = []
    earliest = Month.containing(start, tz)
    for _ in range(_LOOK_BACK_MONTHS):
        earliest = earliest.previous()
    rows = conn.execute(
        _COLUMNS.format(index="INDEXED BY messages_billing")
        + " WHERE m.account_id = ? AND m.created_at >= ? AND m.created_at < ?"
        " AND m.finished_at >= ? AND m.finished_at < ?",
        (account_id, earliest.start(tz).timestamp(), start, start, end),
    ).fetchall()
    # A retried MT whose retries and their ends all came before the month changes in it only if it
    # ends in it: most are read by that end, not one by one.
    changed = {m for m, r in retries.items() if any(max(x["r"], x["f"] or 0.0) >= start for x in r)}
    older = [m for m in retries if m not in changed]
    for ids, since in ((list(changed), None), (older, start)):
        for i in range(0, len(ids), _BATCH):
            batch = ids[i : i + _BATCH]
            query = _COLUMNS.format(index="") + f" WHERE m.id IN ({','.join('?' * len(batch))})"
            query += " AND m.account_id = ?" + ("" if since is None else " AND m.finished_at >= ?")
            rows += conn.execute(query, (*batch, account_id, *(() if since is None else (since,))))
    reached = _reached(conn, {r[0]: retries[r[0]][-1].get("q", []) for r in rows if r[0] in retries})
    seen = set()
    for row in rows:
        if row[0] in seen or (bill_time := _bill_time(times, row[1])) is None:
            continue
        seen.add(row[0])
        records = _mine(retries[row[0]], row[1]) if row[0] in retries else []
        changes = _changes(row, bill_time, records, reached.get(row[0], 0), tz)
        for n, (at, was, parts, now, more, why) in enumerate(changes):
            if start <= at < end:
                pair = _pair(row, at, was, parts, now, more, why, tz)
                found.extend((at, row[0], 2 * n + i, line) for i, line in enumerate(pair))
    if found:
        log.info("billing.mt_corrections", month=str(month), account_id=account_id, lines=len(found))
    return [line for *_key, line in sorted(found, key=lambda f: f[:3])]


def _changes(
    row: tuple[Any, ...], bill_time: float, records: list[dict[str, Any]], reached: int, tz: ZoneInfo
) -> Iterator[tuple[float, str, int, str, int, str]]:
    """(when, status before, parts before, status after, parts added, why) of each change of the MT's
    outcome since its bill: an attempt's end, adding the parts it sent again that reached the SMSC
    (one that ended before the bill is on its line), and a retry, which queues parts again."""
    _mid, _created, _user, _source, _to, parts_total, state, reason, finished_at, _answer = row
    tries = attempts(records, mt_status(state), mt_reason(state, reason), finished_at, reached)
    k, status, _why, parts = bill(tries, bill_time, parts_total)
    counted = _counted(tries[k], status, bill_time)  # the parts of it that reached the SMSC are billed
    for i, a in enumerate(tries[k:], k):
        # An end after the bill: one that stays `pending` (unreported) is booked only for its parts.
        if not counted and a.finished is not None and (a.status != "pending" or a.reached):
            why = _ended(a.status, a.why, a.reached if i else None)
            yield a.finished, status, parts, a.status, a.reached, why
            status, parts, counted = a.status, parts + a.reached, True
        if a.retried is None:
            return
        more = 0 if counted else a.reached  # an attempt cut short by the retry: what went of it
        if status != "pending" or more:  # pending then pending with nothing added changes no count
            when = datetime.fromtimestamp(a.retried, tz)
            why = f"queued again by a retry on {when:%Y-%m-%d %H:%M:%S}"
            yield a.retried, status, parts, "pending", more, why
        status, parts, counted = "pending", parts + more, False


def _ended(status: str, why: str, reached: int | None) -> str:
    """`reached`: of an attempt a retry began, how many parts it queued reached the SMSC."""
    again = "" if reached is None else f"; {reached} part(s) queued again by the retry reached the SMSC"
    return f"it ended after its month was billed{f' ({why})' if why and status != 'delivered' else ''}{again}"


def _pair(
    row: tuple[Any, ...], at: float, was: str, parts: int, now: str, more: int, why: str, tz: ZoneInfo
) -> tuple[Line, Line]:
    mid, created, user, source, to, _parts, _state, _reason, _finished, answer = row
    month = Month.containing(created, tz)
    note = (
        f"correction of the SMS of {datetime.fromtimestamp(created, tz):%Y-%m-%d %H:%M:%S} to {to}"
        f" (billed in {month}): {was} then {now}, {why}"
    )
    kind, money, number = (MT, None, None) if answer is None else (PREMIUM_ANSWER, 0, source)
    back = Line(at, RANK, mid, kind, user, source, to, -parts, was, note, money, money, number, -1)
    return back, back._replace(parts=parts + more, status=now, sms=1)


def stepped_back(conn: sqlite3.Connection, step: ClockStep, low: int, high: int, since: float) -> None:
    """In the write that moves the rows for a step back, before they move: the retry records of the MTs
    whose `created_at` it moves (ids in [low, high), from `since`: `senttimes.moving`) follow them, or
    they would read as another MT's given a freed id (`_mine`), and the retries' corrections would be
    lost. Few: an admin's retries."""
    moved, args = senttimes.accepted(step, since)
    sql = f"SELECT created_at, {moved} FROM messages WHERE id = ? AND created_at >= ?"
    for key, value in list(_span(conn, RETRIED_PREFIX)):
        mid = int(key.rsplit("/", 1)[1])
        row = conn.execute(sql, (*args, mid, since)).fetchone() if low <= mid < high else None
        if row is None or not (records := _mine(value, row[0])) or row[1] == row[0]:
            continue
        for record in records:
            record["c"] = row[1]
        conn.execute("UPDATE billing_state SET value = ? WHERE key = ?", (json.dumps(records), key))
