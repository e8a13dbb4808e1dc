"""Why a part still to go waits, in the words `smsgw queue show` and the panel's message page both
print: its next try (or, waiting for a link of its route, its validity's end), and no link up for its
number, with since when each of its links is down (`gateway.linkstatus.waiting_for`).

The page said only the row's note ("waiting for a link to the operator: none that serves this number
was up") while `queue show` also named the link, since when it was down and the next try: an operator
looking at the panel during an outage did not learn which link to see to. One source, so that the two
never tell a part two ways.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.linkstatus import Links, Routes, waiting_for
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.store.partnotes import TIED_WAIT
from gateway.store.queueage import parked

WAITING = ("queued", "deferred")
Due = tuple[float | None, float | None, bool]  # next try, validity's end, waiting for a link of its route
TIED = (
    "held for link {}, which took part {} of this SMS: the rest go by that link alone (a phone joins no"
    " parts from two SMSCs); should it refuse them or stay down for {:.0f} s while another link for the"
    " number is up, the whole SMS goes again by that other link under a new reference"
)


def due_times(conn: sqlite3.Connection, ids: list[int]) -> dict[int, Due]:
    """The next try, validity's end and whether it waits for a link of its route, of each part."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, next_attempt_at, expires_at, {parked()} FROM parts WHERE id IN ({marks})"
    return {pid: (at, ends, bool(waits)) for pid, at, ends, waits in conn.execute(sql, ids)}


def part_waits(
    part: Mapping[str, Any],
    recipient: str,
    due: Due,
    *,
    links: Links | None,
    down: str | None,
    routes: Routes,
    now: float,
    when: Callable[[float], str],
    tied: tuple[str, int] | None = None,
) -> str | None:
    """Why the part waits, or None when nothing is to be said. `links` as the daemon last told them
    (None with `down`, what became of the daemon); `tied`: the link that took another part of its long
    SMS, and that part's number (`tied_to`)."""
    said = []
    if part["state"] == "deferred":
        reason = ", after the error above" if part["error"] else ""  # the part's own line words it
        at, ends, waits = due
        # Waiting for a link of its route (`gateway.linkwaits`), it is due at its validity's end:
        # that time is no try, but its end.
        nxt = f"when a link for it comes up (its validity ends {when(ends)})" if waits else when(at)
        said.append(f"next try {nxt}{reason}")
    if links is None:
        said.append(f"the daemon is {down}")
    elif (no_link := waiting_for(recipient, links, routes, now, when)) is not None:
        said.append(no_link)
    if tied is not None and not str(part.get("error") or "").startswith(TIED_WAIT.split("{", 1)[0]):
        # A link up refusing the rest said only "next try HH:MM, after the error above": not that the
        # SMS waits for that link alone, nor that it moves whole after a while (`gateway.linkchoice`).
        said.append(TIED.format(*tied, LONG_SMS_WAIT_SECONDS))
    return "; ".join(said) or None


def tied_to(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[str, int]]:
    """Of the parts of long SMS among `ids`: the link an SMSC took another part of their SMS by (the one
    `QueueRepo.link_taken` gives), and that part's number."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    sql = (
        "SELECT p.id, q.link, MIN(q.seq) FROM parts p JOIN parts q ON q.message_id = p.message_id"
        f" WHERE p.id IN ({marks}) AND p.udh IS NOT NULL AND q.id != p.id AND q.link IS NOT NULL"
        " AND q.state IN ('submitted', 'delivered', 'unreported') GROUP BY p.id"
    )
    return {pid: (link, seq) for pid, link, seq in conn.execute(sql, ids)}


def parts_wait(
    conn: sqlite3.Connection,
    parts: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    links: Links | None,
    down: str | None,
    routes: Routes,
    now: float,
    when: Callable[[float], str],
) -> dict[int, str]:
    """`part_waits` of each (recipient, part) still to go, by part id."""
    waiting = [(recipient, p) for recipient, p in parts if p["state"] in WAITING]
    due = due_times(conn, [p["id"] for _, p in waiting])
    tied = tied_to(conn, [p["id"] for _, p in waiting])
    out = {}
    for recipient, p in waiting:
        said = part_waits(
            p,
            recipient,
            due.get(p["id"], (None, None, False)),
            links=links,
            down=down,
            routes=routes,
            now=now,
            when=when,
            tied=tied.get(p["id"]),
        )
        if said is not None:
            out[p["id"]] = said
    return out
