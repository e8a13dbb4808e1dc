"""An SMS to a phone (MT) of a billed month whose outcome changed after the bill: correction lines.

A month's bill shows each MT as it stood when the bill was first written to be mailed (`as_of`,
recorded before its rows are read), and so does the month written again: one still waiting for its
report then is listed `pending`. When it ends later (its report comes after 00:05 on the 1st, a bulk
SMS held over the month end by quiet hours or a link down goes, it expires), the month it ends in
lists two lines of its kind, as a premium MO's correction does: one taking it back under the status
it was billed with (negative sms and parts) and one under its new status, both with the reason
`correction of the SMS of <date> <time> to <phone> (billed in YYYY-MM): <old> then <new>, <why>`.

An admin's retry sends the ended parts that had reached the SMSC again, which the SMSC is paid for
again. One made before its month's bill adds them to the MT's line in that bill. One made after it:
the retry's month lists a pair taking back the outcome billed and booking it `pending` with the
parts sent again added, and the month its parts end in a pair booking that end. So whatever the
SMSC was paid for is on exactly one bill, and the status counts of the months add up.

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
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from billing_reports.monthly import _MT_STATUS, MT, PREMIUM_ANSWER, Line, Month

_AS_OF = "mt_as_of/"  # + YYYY-MM: `<unix time of the bill> <month start> <month end>`
_RETRIED = "mt_retried/"  # + account id / message id: the MT's retries, as JSON
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


def record_as_of(conn: sqlite3.Connection, month: Month, tz: ZoneInfo, now: float) -> bool:
    """Before the rows of a bill that goes out are read (the scheduled run, `billing run --send`):
    the time its MTs are billed as of. The first bill's stays: the month written again, or mailed
    again, shows what the account and the operator hold, and later changes are corrections.
    True if this call recorded it."""
    start, end = month.bounds(tz)
    return (
        conn.execute(
            "INSERT INTO billing_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
            (f"{_AS_OF}{month}", f"{now!r} {start!r} {end!r}"),
        ).rowcount
        > 0
    )


def forget_as_of(conn: sqlite3.Connection, month: Month) -> None:
    """A bill time `record_as_of` recorded for a run that did not write the whole month."""
    conn.execute("DELETE FROM billing_state WHERE key = ?", (f"{_AS_OF}{month}",))


def _times(conn: sqlite3.Connection) -> list[tuple[float, float, float]]:
    """(bill time, month start, month end) of every month billed since they were recorded."""
    return [tuple(float(v) for v in value.split()) for _k, value in _span(conn, _AS_OF)]  # type: ignore[misc]


def _bill_time(times: list[tuple[float, float, float]], created_at: float) -> float | None:
    return next((t for t, start, end in times if start <= created_at < end), None)


def retried_key(account_id: int, message_id: int) -> str:
    return f"{_RETRIED}{account_id}/{message_id}"


def _mine(value: str, created_at: float) -> list[dict[str, Any]]:
    """The records of the MT made at `created_at`: none if they are another's whose id was given again."""
    records: list[dict[str, Any]] = json.loads(value)
    return records if records and records[0].get("c") == created_at else []


def _account_records(conn: sqlite3.Connection, account_id: int) -> dict[int, str]:
    """The account's records by message id, unparsed: a range of billing_state's key."""
    prefix = f"{_RETRIED}{account_id}/"
    return {int(k.removeprefix(prefix)): v for k, v in _span(conn, prefix)}


def _split(records: list[dict[str, Any]], bill_time: float | None) -> tuple[int, list[dict[str, Any]]]:
    """(parts sent again before the bill, on its lines; the records after it, its corrections)."""
    if bill_time is None:
        return sum(r["n"] for r in records), []
    return sum(r["n"] for r in records if r["r"] <= bill_time), [r for r in records if r["r"] > bill_time]


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
    """In an admin's retry of the MT, before its rows are reset, whether its month was billed or not:
    what the retry resets, the outcome billed (or corrected to) and the parts it sends again.

    Only an ended part that had reached the SMSC is paid for again: one cancelled while queued (or
    because another part failed) or refused at its submit never went. A retry clears a part's
    `submitted_at` and a submit sets it, so it says whether the part's last attempt went."""
    row = conn.execute(
        "SELECT created_at, state, reason, finished_at, parts_total, account_id FROM messages WHERE id = ?",
        (message_id,),
    ).fetchone()
    if row is None or row[5] is None:
        return  # no account, no bill
    resets = conn.execute(
        "SELECT COUNT(*), COUNT(CASE WHEN state IN ('failed', 'expired', 'cancelled')"
        " AND submitted_at IS NOT NULL THEN 1 END) FROM parts WHERE message_id = ?"
        " AND state IN ('hold', 'failed', 'expired', 'cancelled', 'deferred', 'queued')",
        (message_id,),
    ).fetchone()
    if not resets[0]:
        return  # nothing is reset: the row stays as billed
    key = retried_key(row[5], message_id)
    stored = conn.execute("SELECT value FROM billing_state WHERE key = ?", (key,)).fetchone()
    records = _mine(stored[0], row[0]) if stored else []
    bill_time = _bill_time(_times(conn), row[0])
    before, after = _split(records, bill_time)
    if after:
        billed, billed_why, parts = "pending", "", after[-1]["p"] + after[-1]["n"]
    else:
        billed, billed_why = as_billed(bill_time, _status(row[1]), _reason(row[1], row[2]), row[3])
        parts = row[4] + before
    records.append(
        {"r": now, "c": row[0], "b": billed, "bwhy": billed_why, "p": parts, "n": resets[1],
         "s": _status(row[1]), "why": _reason(row[1], row[2]), "f": row[3]}
    )  # fmt: skip
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(records)),
    )


class Billed:
    """How an account's MT lines of a month read as billed: the bill's time and the retries' records."""

    def __init__(self, conn: sqlite3.Connection, account_id: int, month: Month, tz: ZoneInfo) -> None:
        start = month.bounds(tz)[0]
        self.bill_time = _bill_time(_times(conn), start)
        self.records = _account_records(conn, account_id)

    def line(
        self, mid: int, created_at: float, status: str, reason: str, finished_at: float | None, parts: int
    ) -> tuple[str, str, int]:
        """(status, reason, parts) billed: with the parts that retries before the bill sent again."""
        records = _mine(self.records[mid], created_at) if mid in self.records else []
        before, after = _split(records, self.bill_time)
        if after:
            return after[0]["b"], after[0]["bwhy"], parts + before
        return (*as_billed(self.bill_time, status, reason, finished_at), parts + before)


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
    retries = _account_records(conn, account_id)
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
        records = _mine(retries[row[0]], row[1]) if row[0] in retries else []
        changes = _changes(row, bill_time, records, tz)
        for n, (at, was, parts, now, more, why) in enumerate(changes):
            if start <= at < end:
                pair = _pair(row, at, was, parts, now, more, why, tz)
                found.extend((at, row[0], 2 * n + i, line) for i, line in enumerate(pair))
    if found:
        log.info("billing.mt_corrections", month=str(month), account_id=account_id, lines=len(found))
    return [line for *_key, line in sorted(found, key=lambda f: f[:3])]


def _changes(
    row: tuple[Any, ...], bill_time: float, records: list[dict[str, Any]], tz: ZoneInfo
) -> Iterator[tuple[float, str, int, str, int, str]]:
    """(when, status before, parts before, status after, parts sent again, why) of each change of
    the MT's outcome since its bill (the retries before it are in its line)."""
    _mid, _created, _user, _source, _to, parts_total, state, reason, finished_at, _answer = row
    before, after = _split(records, bill_time)
    billed = as_billed(bill_time, _status(state), _reason(state, reason), finished_at)[0]
    parts = parts_total + before
    for r in after:
        if r["b"] == "pending" and r["s"] != "pending" and r["f"] is not None:
            yield r["f"], "pending", r["p"], r["s"], 0, _ended(r["s"], r["why"])
        when = datetime.fromtimestamp(r["r"], tz)
        again = "sent again" if r["n"] else "queued again, no part of it had reached the SMSC,"
        yield r["r"], r["s"], r["p"], "pending", r["n"], f"{again} by a retry on {when:%Y-%m-%d %H:%M:%S}"
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
