"""Which domains the gateway has served, kept so that a start need not read every conversation to tell
the domains taken out of `[gateway] domains` (`formerdomains`, `cli.droppeddomains`).

Each conversation keeps its domain, and no index is on it: finding the domains they name read the
whole table, some 55 to 270 ms on 500,000 conversations, three times a start (the daemon, each intake
worker, the start's warning) and at each check-config, though the domains had not changed. The store's
key/value table (`billing_state`) now keeps the domains served (`domains_served`: each start's
configured ones, and those dropped that conversations still name), and what the last reading of the
table found of those dropped (`domains_held`). A start whose domains include every one served reads
nothing more; one without them (a domain dropped, or no key yet) has the daemon read the table, and
keep what it found for the intake workers and check-config to read in one row, and for the daemon's
next starts with the same domains dropped within a day. A domain added back is served again: nothing
held of it. Once a dropped domain's conversations are gone (after their reply window), it is no
longer kept as served, and the starts read the table no more.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.conversations.queries import DOMAINS_NAMED

SERVED_KEY = "domains_served"
HELD_KEY = "domains_held"
KEYS = f"SELECT key, value FROM billing_state WHERE key IN ('{SERVED_KEY}', '{HELD_KEY}')"
SCAN = DOMAINS_NAMED  # the conversations' query (their package's): each domain, its count, its last SMS
# How long what a start found stands for the next starts with the same domains dropped: their
# conversations only go (after their reply window), so the count it says is at most this old.
FRESH_SECONDS = 86_400.0

# A dropped domain -> the conversations that name it and the time of the last SMS sent in one.
Held = dict[str, tuple[int, float]]
Rows = Callable[[str], list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class _Kept:
    served: set[str] | None = None  # None: not kept yet
    held: Held | None = None  # what the last reading found of those dropped then, None: no reading
    at: float = 0.0  # the time of that reading


def normal(domain: str) -> str:
    return domain.lower().rstrip(".")


def held(rows: Rows, configured: Iterable[str]) -> Held:
    """The dropped domains conversations name, as the daemon's start last found them; the table read
    (`rows` runs a query) only when that does not tell them for `configured` (no key yet, or other
    domains dropped, as check-config of a config not yet started)."""
    ours = {normal(domain) for domain in configured}
    known = _known(_keys(rows(KEYS)), ours)
    return known if known is not None else scanned(rows(SCAN), ours)


def at_start(
    conn: sqlite3.Connection, configured: Iterable[str], now: float
) -> tuple[Held, list[tuple[str, str]]]:
    """At the daemon's start: the dropped domains conversations name, the table read only when the
    served domains are not all configured and no reading of the last day found them for these; and
    the key/value rows to write (`write`) so that the others read what was found (none on the usual
    start)."""
    ours = {normal(domain) for domain in configured}
    kept = _keys(conn.execute(KEYS).fetchall())
    known = _known(kept, ours)
    if known and now - kept.at >= FRESH_SECONDS:
        known = None  # its conversations may have gone since: read again
    if known or (known is not None and kept.served == ours and not kept.held):
        # The usual start, or the same domains dropped as the last: nothing to write but a domain added
        # meanwhile (else, dropped in turn, it was never known as served: its mail heard no 551).
        added = ours - (kept.served or set())
        return known, [(SERVED_KEY, json.dumps(sorted((kept.served or set()) | ours)))] if added else []
    found = {} if known is not None else scanned(conn.execute(SCAN).fetchall(), ours)
    held_value = json.dumps({"at": now, "held": [[d, n, last] for d, (n, last) in sorted(found.items())]})
    return found, [(SERVED_KEY, json.dumps(sorted(ours | set(found)))), (HELD_KEY, held_value)]


def write(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    """Inside a store write: the rows `at_start` gave."""
    conn.executemany(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value != excluded.value",
        rows,
    )


def scanned(rows: list[tuple[Any, ...]], ours: set[str]) -> Held:
    """The SCAN's rows of the domains not in `ours`."""
    found: Held = {}
    for domain, count, last in rows:
        if domain and (name := normal(str(domain))) not in ours:
            n, at = found.get(name, (0, 0.0))
            found[name] = (n + int(count), max(at, float(last or 0.0)))
    return found


def _known(kept: _Kept, ours: set[str]) -> Held | None:
    """What is held of the domains dropped from `ours`, None when the keys do not tell."""
    if kept.served is None:
        return None
    if kept.served <= ours:
        return {}
    if kept.held is None or set(kept.held) != kept.served - ours:  # not read for these domains
        return None
    return kept.held


def _keys(rows: list[tuple[Any, ...]]) -> _Kept:
    values = dict(rows)
    try:
        served = set(json.loads(values[SERVED_KEY])) if SERVED_KEY in values else None
        if HELD_KEY not in values:
            return _Kept(served)
        record = json.loads(values[HELD_KEY])
        found = {str(d): (int(n), float(last)) for d, n, last in record["held"]}
        return _Kept(served, found, float(record["at"]))
    except (ValueError, TypeError, KeyError):
        return _Kept()
