"""A month of an account's traffic as billing lines, in time order, read as a stream.

A month is `YYYY-MM` in the installation's time zone (`[gateway] timezone`): it starts and ends at
local midnight, so a month with a DST change is an hour shorter or longer than its days suggest.
Each of the four kinds is read by its own time-ordered query and the streams are merged, so memory
holds a few rows whatever the month's size.
"""

from __future__ import annotations

import heapq
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from billing_reports import repo
from gateway.premium import billrows

if TYPE_CHECKING:
    from billing_reports.mtlate import Billed

MT, REPLY, PREMIUM_MO, PREMIUM_ANSWER = "MT", "MO-reply", "premium-MO", "premium-answer"
KINDS = (MT, REPLY, PREMIUM_MO, PREMIUM_ANSWER)
STATUSES = ("delivered", "failed", "expired", "pending")

# ASCII digits only: `\d` also takes full-width and other scripts' digits, which int() reads.
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# The years a month may be asked for. Before 2000 nothing of this gateway existed (and year 1's
# files would still be written); a month of 9999 ends in the year 10000, which datetime cannot hold.
FIRST_YEAR, LAST_YEAR = 2000, 9998


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str, *, option: str | None = None) -> Month:
        """A month as an admin types it; ValueError naming `option` (such as "--month") when given."""
        m = _MONTH.fullmatch(text.strip())
        if m is None or not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR:
            form = f"give YYYY-MM between {FIRST_YEAR}-01 and {LAST_YEAR}-12, such as 2026-03"
            raise ValueError(f"{option} {text}: {form}" if option else f"{text!r} is not a month: {form}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def containing(cls, ts: float, tz: ZoneInfo) -> Month:
        local = datetime.fromtimestamp(ts, tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def bounds(self, tz: ZoneInfo) -> tuple[float, float]:
        """[start, end) in Unix seconds: local midnight of the 1st to local midnight of the next 1st."""
        return self.start(tz).timestamp(), self.next().start(tz).timestamp()

    def hours(self, tz: ZoneInfo) -> float:
        start, end = self.bounds(tz)
        return (end - start) / 3600


class Line(NamedTuple):
    """One SMS of the billing file. Money is integer grosze; None where it does not apply."""

    ts: float
    rank: int  # orders kinds at the same second, so re-runs list them the same way
    row_id: int
    kind: str
    party: str  # the user (MT, premium answer) or the phone (MO reply, premium MO)
    origin: str
    destination: str
    parts: int
    status: str  # one of STATUSES
    reason: str
    price: int | None
    commission: int | None
    number: str | None  # the premium number (the totals per number count its premium-MO lines)
    sms: int = 1  # 0 for the late parts of an SMS listed before: its parts and money, not another SMS


_MT_STATUS = {
    "delivered": "delivered",
    "failed": "failed",
    "cancelled": "failed",
    "expired": "expired",
}


def mt_status(state: str) -> str:
    """An MT's billed status from its message state."""
    return _MT_STATUS.get(state, "pending")


def mt_reason(state: str, reason: str | None) -> str:
    """The documented reason of a cancel, whoever cancelled it: a script filtering on `cancelled`
    found nothing in the `cancelled by admin` that `queue cancel` stores (the audit trail says who)."""
    return "cancelled" if state == "cancelled" else reason or ""


def _mt(rows: Iterator[tuple], billed: Billed) -> Iterator[Line]:  # type: ignore[type-arg]
    """As billed: an MT that ended, or was sent again, after its month's bill is listed as the bill
    listed it, and the change is a correction in a later month (`billing_reports.mtlate`); the parts
    a retry before the bill sent again are on its line, as the SMSC was paid for them."""
    for ts, mid, mail_from, source, recipient, parts, state, reason, answer, finished_at in rows:
        status, reason, parts = billed.line(
            mid, ts, mt_status(state), mt_reason(state, reason), finished_at, parts
        )
        if answer is None:
            yield Line(
                ts, 0, mid, MT, mail_from, source, recipient, parts, status, reason or "", None, None, None
            )
        else:  # a free answer to a premium MO: sent from the premium number, costs nothing
            yield Line(
                ts,
                3,
                mid,
                PREMIUM_ANSWER,
                mail_from,
                source,
                recipient,
                parts,
                status,
                reason or "",
                0,
                0,
                source,
            )


def _late(first_at: float | None, tz: ZoneInfo) -> str:
    """The reason column of the late parts of an SMS (`gateway.store.mo`): which SMS they complete."""
    if first_at is None:
        return ""
    return f"late part of the SMS of {datetime.fromtimestamp(first_at, tz):%Y-%m-%d %H:%M:%S}"


def _replies(rows: Iterator[tuple], tz: ZoneInfo) -> Iterator[Line]:  # type: ignore[type-arg]
    # Here, not above: `smsgw --help` reads `Month`, and must not import the config and the store for it.
    from gateway.conversations.inbound import told

    for ts, mid, source, destination, parts, state, note, taken, first_at in rows:
        status = reply_status(state, note or "", taken=bool(taken))
        # The company's file: a former user of theirs is "no longer a user of this account", never
        # that another account has them now (`inbound.told`); the operator reads it raw in `mo list`.
        reason = told(note or "") if status != "delivered" else _late(first_at, tz)
        yield Line(
            ts, 1, mid, REPLY, source, source, destination, parts, status, reason, None, None, None,
            0 if first_at is not None else 1,
        )  # fmt: skip


# What `smsgw outbox retry` adds to the note of an answer whose refused mail it sent after all.
_MAILED_AFTER_ALL = "after all, on a retry"


def reply_status(state: str, note: str, *, taken: bool) -> str:
    """The billing status of a phone's answer (MO-reply) in `state`, for the company: `delivered`
    once mailed to it. Joined to a conversation (`taken`), an opt-out answer was mailed to its user
    like any other. At the fallback address because no user of the company was left to take it (the
    user removed or moved), that address is where it was meant to go: `delivered`, as the README has
    it. But a conversation's answer goes there (`fallback`) only when the user's mail server refused
    or bounced its mail: the company never got it, and its line said `delivered` with no reason
    while `mo list` and the panel said it was refused. `failed`, with that reason, as a premium MO
    whose client's address refused it is (`premium_status`), unless a retry mailed it after all."""
    if state == "fallback" and taken and not note.endswith(_MAILED_AFTER_ALL):
        return "failed"
    if state in ("mailed", "fallback", "optout"):
        return "delivered"
    return "pending" if state == "new" else "failed"


def premium_status(state: str, *, claimed: bool) -> str:
    """The billing status of a premium MO in `state`, for the party billed: `delivered` once mailed
    to it. A client's (`claimed`) is mailed to the client (`mailed`); one mailed to the fallback
    because the client's address refused it is `failed` for the client, who never got it. One no
    service claimed is the operator's, and mailed to the fallback address (`fallback`) it reached
    their mailbox: counted `failed`, the summary told of nine failures where `mo list` said nine paid
    votes were mailed. Recorded only (`unmatched`, no address) or refused there too, it is `failed`."""
    if state == "mailed" or (state == "fallback" and not claimed):
        return "delivered"
    return "pending" if state == "awaiting" else "failed"


def _premium(rows: Iterator[tuple], tz: ZoneInfo, *, claimed: bool) -> Iterator[Line]:  # type: ignore[type-arg]
    """A premium MO's line in the month it came in. One that moved after its month was billed (its
    service removed before the address confirmed: the row's state is now `fallback`) is listed as
    billed, under the status its correction took back: the month written again read `failed` where
    the mailed file read `pending`, and with the correction's reversal of `pending` the months' status
    counts no longer added up."""
    for ts, pid, phone, number, parts, state, note, price, commission, first_at, billed_as in rows:
        status = billed_as or premium_status(state, claimed=claimed)
        reason = (note or state) if status == "failed" else _late(first_at, tz)
        yield Line(
            ts, 2, pid, PREMIUM_MO, phone, phone, number, parts, status, reason, price, commission, number,
            0 if first_at is not None else 1,
        )  # fmt: skip


def _corrections(rows: Iterator[tuple]) -> Iterator[Line]:  # type: ignore[type-arg]
    """A premium MO of a billed month moved to another party: a line reversing it for the party
    billed, one booking it for the new one, each saying which SMS it corrects (its own note, in the
    words of the company whose line it is: never the other company's name, `correctionnotes`)."""
    from gateway.premium.correctionnotes import told

    for ts, cid, phone, number, parts, status, note, price, commission, sms in rows:
        yield Line(
            ts, 4, cid, PREMIUM_MO, phone, phone, number, parts, status, told(note), price, commission,
            number, sms,
        )  # fmt: skip


def lines(conn: sqlite3.Connection, account_id: int | None, month: Month, tz: ZoneInfo) -> Iterator[Line]:
    """Every SMS of the account in the month, in time order (kind, then row id, at the same time).

    `account_id` None: the premium MOs no service claimed (they are the operator's, in the summary).
    """
    start, end = month.bounds(tz)
    if account_id is None:
        yield from heapq.merge(
            _premium(billrows.premium_rows(conn, None, start, end), tz, claimed=False),
            _corrections(billrows.correction_rows(conn, None, start, end)),
            key=lambda line: (line.ts, line.rank, line.row_id),
        )
        return
    from billing_reports import mtlate  # it reads this module's lines and months

    yield from heapq.merge(
        _mt(repo.mt_rows(conn, account_id, start, end), mtlate.Billed(conn, account_id, month, tz)),
        _replies(repo.reply_rows(conn, account_id, start, end), tz),
        _premium(billrows.premium_rows(conn, account_id, start, end), tz, claimed=True),
        _corrections(billrows.correction_rows(conn, account_id, start, end)),
        mtlate.lines(conn, account_id, month, tz),
        key=lambda line: (line.ts, line.rank, line.row_id),
    )


def due_months(
    last_billed: Month | None,
    now: float,
    tz: ZoneInfo,
    since: float | None = None,
    used: float | None = None,
) -> list[Month]:
    """Months that ended (local midnight passed) and were not billed yet, oldest first.

    Without a record of a billed month, billing starts with the month of the first SMS or MO
    (`used`), or the month just ended if that is later or there was none: a daemon that was down
    over its first month end must still bill that month, while accounts made long before any
    traffic need no run of empty bills. A month that ended before the first account was made
    (`since`), or with no account yet, only if it had traffic: a new installation's first start
    would otherwise bill, and list in the panel, an empty month from before it existed; while paid
    votes that came to the fallback before the first account (their money on the summary's line for
    premium MOs without a service, as `billing run` by hand lists them) were never billed at all.
    """
    latest = Month.containing(now, tz).previous()
    if last_billed is None:
        end = latest.bounds(tz)[1]
        if used is not None and used < end:
            month = Month.containing(used, tz)
        elif since is not None and since < end:
            month = latest
        else:
            return []
        last_billed = month.previous()
    due = []
    month = last_billed.next()
    while month <= latest:
        due.append(month)
        month = month.next()
    return due
