"""An SMS to a phone (MT) of a billed month whose outcome changed after the bill: correction lines.

A month's bill shows each MT as it stood when the bill was first written to be mailed (`as_of`,
recorded before its rows are read), and so does the month written again: one still waiting for its
report then is listed `pending`. When it ends later (its report comes after 00:05 on the 1st, a bulk
SMS held over the month end by quiet hours or a link down goes, it expires), the month it ends in
lists two lines of its kind, as a premium MO's correction does: one taking it back under the status
it was billed with (negative sms and parts) and one under its new status, both with the reason
`correction of the SMS of <date> <time> to <phone> (billed in YYYY-MM): <old> then <new>, <why>`.

An admin's retry of an MT of a billed month sends its ended parts again, which the SMSC is paid for
again: the retry's month lists a pair taking back the outcome billed and booking it `pending` with
the parts sent again added, and the month its parts end in a pair booking that end. So whatever the
SMSC was paid for is on exactly one bill, and the status counts of the months add up.

No schema change: the row keeps being changed in place; the outcome billed is the row as of the
bill's time (`finished_at` no later than it), and a retry, which resets the row, first keeps what it
resets in billing_state (`retried`), as the months' times are kept there.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from billing_reports.monthly import _MT_STATUS, MT, PREMIUM_ANSWER, Line, Month

_AS_OF = "mt_as_of/"  # + YYYY-MM: `<unix time of the bill> <month start> <month end>`
_RETRIED = "mt_retried/"  # + message id: the retries of an MT of a billed month, as JSON
RANK = 5  # after the other kinds at the same second
# How long before a month an MT billed pending may have been accepted and still end in it: the
# longest validity (720 h) after the bill of the month before, with room for an expiry swept late.
_LOOK_BACK_MONTHS = 2

log = structlog.get_logger()


def _span(conn: sqlite3.Connection, prefix: str) -> Iterator[tuple[str, str]]:
    yield from conn.execute(
        "SELECT key, value FROM billing_state WHERE key >= ? AND key < ? ORDER BY key",
        (prefix, prefix[:-1] + "0"),
    )


def record_as_of(conn: sqlite3.Connection, month: Month, tz: ZoneInfo, now: float) -> None:
    """Before the rows of a bill that goes out are read (the scheduled run, `billing run --send`):
    the time its MTs are billed as of. The first bill's stays: the month written again, or mailed
    again, shows what the account and the operator hold, and later changes are corrections."""
    start, end = month.bounds(tz)
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
        (f"{_AS_OF}{month}", f"{now!r} {start!r} {end!r}"),
    )


def _times(conn: sqlite3.Connection) -> list[tuple[float, float, float]]:
    """(bill time, month start, month end) of every month billed since they were recorded."""
    return [tuple(float(v) for v in value.split()) for _k, value in _span(conn, _AS_OF)]  # type: ignore[misc]


def _bill_time(times: list[tuple[float, float, float]], created_at: float) -> float | None:
    return next((t for t, start, end in times if start <= created_at < end), None)


def _records(conn: sqlite3.Connection, message_id: int) -> list[dict[str, Any]]:
    key = f"{_RETRIED}{message_id}"
    row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else []


def _status(state: str) -> str:
    return _MT_STATUS.get(state, "pending")


def _reason(state: str, reason: str | None) -> str:
    return "cancelled" if state == "cancelled" else reason or ""


def as_billed(
    bill_time: float | None, status: str, reason: str, finished_at: float | None
) -> tuple[str, str]:
    """An MT's status and reason as of its month's bill (`bill_time` None: not recorded, as it is)."""
    if bill_time is not None and finished_at is not None and finished_at > bill_time:
        return "pending", ""
    return status, reason


def retried(conn: sqlite3.Connection, message_id: int, now: float) -> None:
    """In an admin's retry of the MT, before its rows are reset: if its month was billed, what the
    retry resets, the outcome billed (or corrected to) and the ended parts it sends again."""
    row = conn.execute(
        "SELECT created_at, state, reason, finished_at, parts_total FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    if row is None or (bill_time := _bill_time(_times(conn), row[0])) is None:
        return  # its month is still to be billed: its line shows what becomes of it
    (again,) = conn.execute(
        "SELECT COUNT(*) FROM parts WHERE message_id = ? AND state IN ('failed', 'expired', 'cancelled')",
        (message_id,),
    ).fetchone()
    if not again:
        return  # nothing ended is sent again: the bill's count of parts stands
    records = _records(conn, message_id)
    if records:
        billed, billed_why, parts = "pending", "", records[-1]["p"] + records[-1]["n"]
    else:
        billed, billed_why = as_billed(bill_time, _status(row[1]), _reason(row[1], row[2]), row[3])
        parts = row[4]
    records.append(
        {"r": now, "b": billed, "bwhy": billed_why, "p": parts, "n": again, "s": _status(row[1]),
         "why": _reason(row[1], row[2]), "f": row[3]}
    )  # fmt: skip
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (f"{_RETRIED}{message_id}", json.dumps(records)),
    )


class Billed:
    """How a month's MT lines read as billed: the bill's time and the retries' first records."""

    def __init__(self, conn: sqlite3.Connection, month: Month, tz: ZoneInfo) -> None:
        start = month.bounds(tz)[0]
        self.bill_time = _bill_time(_times(conn), start)
        self.first: dict[int, tuple[str, str]] = {}
        if self.bill_time is not None:
            for key, value in _span(conn, _RETRIED):
                record = json.loads(value)[0]
                self.first[int(key.removeprefix(_RETRIED))] = (record["b"], record["bwhy"])

    def line(self, mid: int, status: str, reason: str, finished_at: float | None) -> tuple[str, str]:
        if mid in self.first:
            return self.first[mid]
        return as_billed(self.bill_time, status, reason, finished_at)


_COLUMNS = (
    "SELECT m.id, m.created_at, COALESCE(u.email, lower(e.mail_from)), m.source, m.recipient, m.parts_total,"
    " m.state, m.reason, m.finished_at, pa.id FROM messages m {index} JOIN emails e ON e.id = m.email_id"
    " LEFT JOIN users u ON u.id = e.user_id LEFT JOIN premium_answers pa ON pa.message_id = m.id"
)


def lines(conn: sqlite3.Connection, account_id: int, month: Month, tz: ZoneInfo) -> list[Line]:
    """The account's MT correction lines of the month, in time order: few (an MT pending at a month's
    end, one retried), so held in full."""
    start, end = month.bounds(tz)
    times = _times(conn)
    if not times:
        return []
    retries = {int(k.removeprefix(_RETRIED)): json.loads(v) for k, v in _span(conn, _RETRIED)}
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
    for mid in retries:
        by_id = _COLUMNS.format(index="") + " WHERE m.id = ? AND m.account_id = ?"
        rows += conn.execute(by_id, (mid, account_id))
    seen = set()
    for row in rows:
        if row[0] in seen or (bill_time := _bill_time(times, row[1])) is None:
            continue
        seen.add(row[0])
        changes = _changes(row, bill_time, retries.get(row[0]), tz)
        for n, (at, was, parts, now, more, why) in enumerate(changes):
            if start <= at < end:
                pair = _pair(row, at, was, parts, now, more, why, tz)
                found.extend((at, row[0], 2 * n + i, line) for i, line in enumerate(pair))
    if found:
        log.info("billing.mt_corrections", month=str(month), account_id=account_id, lines=len(found))
    return [line for *_key, line in sorted(found, key=lambda f: f[:3])]


def _changes(
    row: tuple[Any, ...], bill_time: float, records: list[dict[str, Any]] | None, tz: ZoneInfo
) -> Iterator[tuple[float, str, int, str, int, str]]:
    """(when, status before, parts before, status after, parts sent again, why) of each change of
    the MT's outcome since its bill."""
    _mid, _created, _user, _source, _to, parts_total, state, reason, finished_at, _answer = row
    billed, parts = as_billed(bill_time, _status(state), _reason(state, reason), finished_at)[0], parts_total
    for r in records or ():
        if r["b"] == "pending" and r["s"] != "pending" and r["f"] is not None:
            yield r["f"], "pending", r["p"], r["s"], 0, _ended(r["s"], r["why"])
        when = datetime.fromtimestamp(r["r"], tz)
        yield r["r"], r["s"], r["p"], "pending", r["n"], f"sent again by a retry on {when:%Y-%m-%d %H:%M:%S}"
        billed, parts = "pending", r["p"] + r["n"]
    status = _status(state)
    if billed == "pending" and status != "pending" and finished_at is not None:
        yield finished_at, "pending", parts, status, 0, _ended(status, _reason(state, reason))


def _ended(status: str, why: str) -> str:
    return f"it ended after its month was billed{f' ({why})' if why and status != 'delivered' else ''}"


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
