"""Why a database could not be opened, in words an admin can act on, and whether a restart helps.

`smsgw run` exits 3 on a `StoreUnusable` (the unit does not restart it: damage, a newer schema, a
file this user may not write stay so until an admin acts) and 1 on any other `StoreError` (a full
disk, an I/O error, a lock held too long: these pass, and the unit's restart retries).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from gateway.store.fileguard import StoreError, StoreUnusable


def not_writable(path: Path) -> Path | None:
    """The directory or file that keeps SQLite from opening `path` for writing, if either does."""
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return path.parent
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return path
    return None


def open_failure(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """The error to raise for `exc`, met while opening (and checking) the database at `path`."""
    blocked = not_writable(path)
    if blocked is not None:  # not damage: no reason to send anyone to the backups
        from gateway.sudoline import owner_remedy  # the CLI's words: only where said

        how = owner_remedy(blocked, other="fix the owner")
        return StoreUnusable(
            f"database {path} cannot be opened: {blocked} is not writable by this user (SQLite"
            f" keeps its -wal and -shm files beside the database); {how}"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(
            f"database {path} cannot be opened now ({exc}); is the disk full, or does another"
            " process hold the database?"
        )
    return StoreUnusable(
        f"database {path} cannot be read ({exc}); restore it from a backup or move it aside "
        "after saving it for analysis. Refusing to start with an empty queue."
    )
