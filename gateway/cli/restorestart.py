"""The last line of `smsgw restore`: how to start the daemon, and what it then sends.

Apart from `gateway.cli.restore` (at its line limit). "SMS queued in the backup go out again" was
said of a backup that held none, as if something would be sent again: now only where some wait.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

WAITING = "('queued', 'deferred', 'hold', 'active')"  # to go at the start (`active`: caught sending)


def start_line(db: Path, service: str | None, *, nothing_carried: bool) -> str:
    start = f"systemctl start {service}" if service else "`smsgw run`, as it was started before"
    if not sms_waiting(db):
        return f"start the daemon ({start}); no SMS waits to go out in it"
    if nothing_carried:
        return f"start the daemon ({start}); SMS queued in the backup go out again"
    return f"start the daemon ({start}); SMS queued in the backup and not sent or cancelled since go out"


def sms_waiting(db: Path) -> bool:
    """Whether the database restored holds SMS still to go (unread: said as if it did)."""
    try:
        with closing(sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)) as conn:
            found = conn.execute(f"SELECT 1 FROM parts WHERE state IN {WAITING} LIMIT 1").fetchone()
        return found is not None
    except sqlite3.Error:
        return True
