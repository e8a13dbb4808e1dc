"""The failures of the billing run and the retention purge kept in `billing_state` (`failures`), as
`smsgw status`, /healthz, /metrics and the panel read them: apart from the module that records them,
whose mail and config reach the daemon's notices and the SMSC drivers' words, so that `status`
imports none of those to read one row (`tests/test_cli_startup.py`).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any, Literal
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

Kind = Literal["billing", "purge"]
KINDS: tuple[Kind, ...] = ("billing", "purge")
_PREFIX = "failed/"
WHAT = {"billing": "billing run", "purge": "retention purge"}


def key(kind: Kind) -> str:
    return _PREFIX + kind


# The failures the database refused to keep (a full disk fails the job and its record alike), by the
# daemon's store: said from memory meanwhile (the status file, /healthz), written by the first write
# the store takes again (`billing_reports.failures.keep_unkept`). They were logged and dropped.
_UNKEPT: WeakKeyDictionary[object, dict[str, dict[str, Any]]] = WeakKeyDictionary()


def unkept(store: object) -> dict[str, dict[str, Any]]:
    """The failures of `store`'s jobs held in memory, by kind, as `failures` gives them (`unkept`
    set): changed in place by their recorder."""
    return _UNKEPT.setdefault(store, {})


def _state(conn: sqlite3.Connection, name: str, db: str) -> str | None:
    row = conn.execute(f"SELECT value FROM {db}.billing_state WHERE key = ?", (name,)).fetchone()
    return str(row[0]) if row else None


def failures(conn: sqlite3.Connection, db: str = "main") -> dict[str, dict[str, Any]]:
    """The failures kept, by kind: month (the oldest owed, billing only), error, fix, since, last.
    `db`: the schema to read ("old": the database a restore replaces, attached)."""
    found = {}
    for kind in KINDS:
        if (raw := _state(conn, key(kind), db)) is not None:
            try:
                found[kind] = dict(json.loads(raw))
            except (ValueError, TypeError):
                found[kind] = {"error": raw}
    return found


def short(kind: str, failure: dict[str, Any]) -> str:
    """The head of `words`, for systemd's STATUS= line: no time or error in it, as that line is sent
    (and kept by the journal) only when it changes."""
    month = f" of {failure['month']}" if failure.get("month") else ""
    return f"{WHAT.get(kind, kind)}{month} has failed"


def words(kind: str, failure: dict[str, Any], tz: ZoneInfo) -> str:
    """One line for the status, /healthz and the panel."""
    since = datetime.fromtimestamp(float(failure.get("since", 0)), tz).strftime("%Y-%m-%d %H:%M")
    held = "; the retention purge is held for it" if kind == "billing" else "; old rows are not deleted"
    fix = f"; fix: {failure['fix']}" if failure.get("fix") else ""
    if failure.get("unkept"):
        return (
            f"{short(kind, failure)} since {since}: {failure.get('error')}{fix}{held} (not kept: the"
            " database takes no writes; tried again as soon as it does)"
        )
    return f"{short(kind, failure)} since {since}: {failure.get('error')}{fix}{held} (tried again every hour)"
