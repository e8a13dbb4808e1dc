"""What the panel's premium page reads, in one read on the panel's reader thread (`counts.run`).

The page grouped the month's votes (`premium.stats.traffic`: 1 s for an account's 300,000 votes of
a month, 2.5 s for the operator's) and looked up each live service's reply list, account and kept
votes one by one, all on the loop's connection: a company admin's reload stopped every SMTP reply
for 2.5-4.6 s. Here the reads run on the reader's own read-only connection, off the loop, as the
conversations page's do; and what was read per service is read once for all of them (2,200 services
added 210 ms of lookups one by one).

A billed month's votes are grouped once (`_grouped`): once its month is billed, a vote's service,
account and money change only by a correction booked later (`premium.corrections.move`), which
the page reads each time, and no vote is added to it once the bound for late parts has passed.
The names of its services and whether they were removed are read anew at each load.

A month still open is kept too, and at each load the votes stored since are added to it (by id,
the few since the last load instead of the month's 300,000: 1.2-2.2 s at each load of the page). What
else changes its figures is a vote stored before changing: claimed by a service, released, moved
to another account (`premium.repo`), deleted by hand. Each makes `premium_generation` take a new
value (a trigger, migration 61), and the month is then grouped anew. So is a database replaced under
the same path (its identity, as above, and its last vote read: gone or another after a restore). A
late part is a vote of its own, stored later (`follows`); a vote's state is not among the figures.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from billing_reports.repo import PARTS_BOUND_SECONDS, billed
from gateway.premium import confirmation, queries
from gateway.premium.repo import Service
from gateway.premium.stats import Correction, Figures, corrections, grouped, moved, named

KEPT = 64  # groupings kept, by database, month and scope: billed months', and open months' apart

Row = tuple[int | None, str, int, int, int, int]

_lock = threading.Lock()
_kept: OrderedDict[tuple[object, ...], list[Row]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class _Open:
    """A month still open as last grouped: under which `premium_generation`, up to which vote (and
    that vote's `mo_id` and time, to tell another database's), its figures by service and number."""

    generation: int
    last: int
    mark: tuple[object, ...] | None
    rows: dict[tuple[int | None, str], tuple[int, int, int, int]]


_open: OrderedDict[tuple[object, ...], _Open] = OrderedDict()


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
    live = queries.live_services(conn, account_id)
    if not live:
        return []
    names = dict(conn.execute("SELECT id, name FROM accounts").fetchall())
    acl = queries.live_acls(conn, account_id)
    # Only an unconfirmed service keeps votes.
    kept = queries.awaiting_counts(conn, [s.id for s in live if not s.verified_at])
    listed = []
    for s in live:
        held = 0 if s.verified_at else kept.get(s.id, 0)
        # Why it waits: its last confirmation's state (a service is unconfirmed for a day or two).
        waits = None if s.verified_at else confirmation.unconfirmed(conn, s, held, now)
        listed.append(Listed(s, names.get(s.account_id, str(s.account_id)), acl.get(s.id, []), held, waits))
    return listed


def _identity(conn: sqlite3.Connection) -> tuple[object, ...] | None:
    """The database file's path and identity (None: in memory, or gone)."""
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_dev, st.st_ino)


def _keep(store: OrderedDict[tuple[object, ...], Any], key: tuple[object, ...], value: object) -> None:
    with _lock:
        store[key] = value
        store.move_to_end(key)
        while len(store) > KEPT:
            store.popitem(last=False)


def _grouped(
    conn: sqlite3.Connection, month: tuple[str, float, float], account_id: int | None, now: float
) -> list[Row]:
    """The month's votes by service and number (`premium.stats.grouped`), kept once it is billed
    and its late parts' bound has passed, and extended while it is open; by the database file's
    identity too (another database at the same path, restored from a copy, is another's)."""
    label, start, end = month
    identity = _identity(conn)
    if identity is None:
        return grouped(conn, start, end, account_id)
    key = (*identity, label, start, end, account_id)
    if now < end + PARTS_BOUND_SECONDS or not billed(conn, label):
        return _extended(conn, key, month, account_id)
    with _lock:
        rows = _kept.get(key)
        if rows is not None:
            _kept.move_to_end(key)
            return rows
    rows = grouped(conn, start, end, account_id)
    _keep(_kept, key, rows)
    return rows


def _extended(
    conn: sqlite3.Connection, key: tuple[object, ...], month: tuple[str, float, float], account_id: int | None
) -> list[Row]:
    """An open month's figures: as kept, plus the votes stored since, or grouped anew when a vote
    stored before changed. The generation is read before the votes: a change committed in between
    leaves the figures kept under the old value, which the next load finds changed."""
    _, start, end = month
    generation = queries.generation(conn)
    last = queries.last_vote(conn)
    with _lock:
        kept = _open.get(key)
    if (
        kept is not None
        and kept.generation == generation
        and kept.last <= last
        and (queries.vote_mark(conn, kept.last) == kept.mark)
    ):
        figures = dict(kept.rows)
        added = grouped(conn, start, end, account_id, after=kept.last, upto=last) if kept.last < last else []
    else:
        figures = {}
        added = grouped(conn, start, end, account_id, upto=last)
    for service_id, number, sms, parts, price, commission in added:
        was = figures.get((service_id, number), (0, 0, 0, 0))
        figures[(service_id, number)] = (was[0] + sms, was[1] + parts, was[2] + price, was[3] + commission)
    _keep(_open, key, _Open(generation, last, queries.vote_mark(conn, last), figures))
    return [(service_id, number, *sums) for (service_id, number), sums in figures.items()]


def read(
    conn: sqlite3.Connection,
    account_id: int | None,
    month: tuple[str, float, float] | None,
    now: float,
    shown: int,
) -> PremiumRead:
    """The page's reads in one transaction (the reader's): the services, and with `month` (YYYY-MM,
    start, end) its figures: the votes of the month by service and number, the corrections booked
    in it and the first `shown` correction lines (only when there are corrections)."""
    listed = services(conn, account_id, now)
    if month is None:
        return PremiumRead(listed, [], [], [])
    _, start, end = month
    votes = named(conn, _grouped(conn, month, account_id, now))
    booked = moved(conn, start, end, account_id)
    lines = corrections(conn, start, end, account_id, limit=shown) if booked else []
    return PremiumRead(listed, votes, booked, lines)
