"""The daemon's status file (`status.json` in the state directory) and its start file
(`starting.json`), read.

Apart from `gateway.housekeeping`, which writes both (`write_status`), because `smsgw status`
reads them every minute under monitoring: the housekeeping module imports most of the daemon.

The start file stands for the status file while the daemon checks and upgrades its database,
which on a large one takes minutes before any status is written: what it does (checking the
database, upgrading it from one schema to another) and which smsgw does it. A command of the new
version took a daemon on an older schema for an older smsgw and said to restart it, which started
the check over.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
START_FILE = "starting.json"


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


def read_starting(state_dir: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((state_dir / START_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def remove_starting(state_dir: Path) -> None:
    with suppress(OSError):
        (state_dir / START_FILE).unlink()


def starting_words(start: dict[str, Any] | None, schema: int | None = None) -> str:
    """What a starting daemon does, as its start file says: "checking the database (1.8 GB)" or
    "upgrading the database from schema 46 to 54 (at 49)"; empty without one.

    `at` is the schema the database has: written before each migration and after it commits
    (`gateway.startprogress`), or `schema` as the caller read it from the database. Once it is the
    target the upgrade is over and the start goes on: a start killed there was said "cut short
    while upgrading ... (at 74)" of a database at 75, beside status's "schema 75"."""
    if not start:
        return ""
    if start.get("phase") == "upgrading":
        at, to = start.get("at") if schema is None else schema, start.get("to")
        if upgrade_over(start, schema):
            return f"opening the database, upgraded from schema {start.get('from')} to {to}"
        now = f" (at {at})" if at is not None and at != start.get("from") else ""
        return f"upgrading the database from schema {start.get('from')} to {to}{now}"
    if start.get("phase") == "checking":
        return f"checking the database ({size_words(int(start.get('bytes') or 0))})"
    if start.get("phase") == "opening":
        return "opening the database"
    return ""


def upgrade_over(start: dict[str, Any], schema: int | None = None) -> bool:
    """Whether an upgrading start reached its target: its `at` (or `schema`, read from the database)
    is its `to`. What status says of a start cut short there, and of a start going on, both follow it."""
    at, to = start.get("at") if schema is None else schema, start.get("to")
    return isinstance(at, int) and isinstance(to, int) and at >= to


def size_words(size: int) -> str:
    """1.8 GB, 745 MB, 12 kB: how big a database is, in the words the start's messages use."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size} bytes"
