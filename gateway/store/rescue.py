"""What a deleted database still holds, copied out of the connection that has it open.

Deleting `smsgw.db` under the daemon removes only its name: the open connection still reads the
file and its WAL, which holds the newest commits. Once the daemon stops, both are gone for good,
so before it stops the connection is copied (SQLite's online backup reads database and WAL as one
snapshot) to `<db>.rescued-<UTC time>` beside it: 0600 (texts, password hashes), fsynced, written
under a temporary name and renamed once whole, so that a copy cut off (disk full) never lies under
the name an admin is told to restore.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from gateway.filemodes import create_private
from gateway.sdnotify import sd_notify

RESCUE_STEP_PAGES = 4096  # 16 MB of 4 KiB pages: well under a second per step


def rescue_copy(conn: sqlite3.Connection, db: Path, now: float) -> Path:
    """Copy the database `conn` has open (deleted from `db`) beside it; the copy's path.

    Raises `sqlite3.Error` or `OSError` when it cannot be written (disk full): the caller says so.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    dest = db.with_name(f"{db.name}.rescued-{stamp}")
    n = 1
    while dest.exists():  # never over an earlier rescue: it may be the only copy of other rows
        n += 1
        dest = db.with_name(f"{db.name}.rescued-{stamp}-{n}")
    tmp = db.with_name(f".{dest.name}.tmp")  # a dot: not taken for a rescued copy (`marker.rescued_copies`)
    tmp.unlink(missing_ok=True)
    create_private(tmp)
    try:
        with closing(sqlite3.connect(tmp, isolation_level=None)) as copy:
            # In steps, telling systemd's watchdog at each that the daemon lives: a copy of some GB
            # held the event loop past WatchdogSec, and the kill took the last reference to the file.
            conn.backup(copy, pages=RESCUE_STEP_PAGES, progress=lambda *_: sd_notify("WATCHDOG=1"))
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        fsync_path(tmp, os.O_RDONLY)
        os.replace(tmp, dest)
        fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)  # the new name survives a crash too
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fsync_path(path: Path, flags: int) -> None:
    """fsync a file or (with O_DIRECTORY) a directory by name: a rename survives a crash only once
    its directory is synced."""
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
