"""What the panel's premium page reads, in one read on the panel's reader thread (`counts.run`).

The page grouped the month's votes (`premium.stats.traffic`: 1 s for an account's 300,000 votes of
a month, 2.5 s for the operator's) and looked up each live service's reply list, account and kept
votes one by one, all on the loop's connection: a company admin's reload stopped every SMTP reply
for 2.5-4.6 s. Here the reads run on the reader's own read-only connection, off the loop, as the
conversations page's do; and what was read per service is read once for all of them (2,200 services
added 210 ms of lookups one by one).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from gateway.premium import confirmation
from gateway.premium.repo import Service
from gateway.premium.stats import Correction, Figures, corrections, moved, traffic

_SERVICE = "id, password, account_id, email, numbers, verified_at, created_at, removed_at"


@dataclass(frozen=True, slots=True)
class Listed:
    """One live service as the page lists it: its account's name, who may answer, and, unconfirmed,
    how many paid SMS it keeps and why it waits."""

    service: Service
    account: str
    acl: list[str]
    kept: int
    waits: confirmation.Unconfirmed | None


@dataclass(frozen=True, slots=True)
class PremiumRead:
    services: list[Listed]
    traffic: list[Figures]
    moved: list[Figures]
    corrections: list[Correction]


def services(conn: sqlite3.Connection, account_id: int | None, now: float) -> list[Listed]:
    """The live services in scope (every one for the operator's None), each with what the page
    shows of it, by a query per kind of thing rather than per service."""
    scope, args = ("", ()) if account_id is None else (" AND account_id = ?", (account_id,))
    live = [
        Service(*r)
        for r in conn.execute(
            f"SELECT {_SERVICE} FROM premium_services WHERE removed_at IS NULL{scope} ORDER BY password", args
        )
    ]
    if not live:
        return []
    names = dict(conn.execute("SELECT id, name FROM accounts").fetchall())
    acl: defaultdict[int, list[str]] = defaultdict(list)
    for service_id, address in conn.execute(
        "SELECT a.service_id, a.address FROM premium_reply_acl a"
        " JOIN premium_services s ON s.id = a.service_id"
        f" WHERE s.removed_at IS NULL{scope.replace('account_id', 's.account_id')}"
        " ORDER BY a.service_id, a.address",
        args,
    ):
        acl[service_id].append(address)
    # Only an unconfirmed service keeps votes (`premium_mo_awaiting`: the awaiting ones alone).
    waiting = [s.id for s in live if not s.verified_at]
    kept: dict[int, int] = {}
    for i in range(0, len(waiting), 500):
        ids = waiting[i : i + 500]
        kept.update(
            conn.execute(
                "SELECT service_id, COUNT(*) FROM premium_mo INDEXED BY premium_mo_awaiting"
                f" WHERE state = 'awaiting' AND service_id IN ({','.join('?' * len(ids))})"
                " GROUP BY service_id",
                ids,
            ).fetchall()
        )
    listed = []
    for s in live:
        held = 0 if s.verified_at else kept.get(s.id, 0)
        # Why it waits: its last confirmation's state (a service is unconfirmed for a day or two).
        waits = None if s.verified_at else confirmation.unconfirmed(conn, s, held, now)
        listed.append(Listed(s, names.get(s.account_id, str(s.account_id)), acl.get(s.id, []), held, waits))
    return listed


def read(
    conn: sqlite3.Connection,
    account_id: int | None,
    month: tuple[float, float] | None,
    now: float,
    shown: int,
) -> PremiumRead:
    """The page's reads in one transaction (the reader's): the services, and with `month` (start,
    end) its figures: the votes of the month by service and number, the corrections booked in it
    and the first `shown` correction lines (only when there are corrections)."""
    listed = services(conn, account_id, now)
    if month is None:
        return PremiumRead(listed, [], [], [])
    start, end = month
    votes = traffic(conn, start, end, account_id)
    booked = moved(conn, start, end, account_id)
    lines = corrections(conn, start, end, account_id, limit=shown) if booked else []
    return PremiumRead(listed, votes, booked, lines)
