"""A database that existed is never silently created anew: the marker file beside it says it did.

SQLite creates a missing file on open, so a deleted `smsgw.db` (a mistaken `rm`, a restore done in
the wrong order, the daemon stopping after it found its file gone) came back at the next start as a
new, empty database: queued SMS, opt-outs (a number that sent STOP got SMS again), accounts and
billing state gone, and a new first panel password written. The marker is written when the database
is created, and at the first open of one created before markers existed. A missing or empty
database with the marker (or a copy rescued from a deleted one: `gateway.store.rescue`) beside it
is refused with `StoreUnusable`, which `smsgw run` turns into exit 3, the status systemd does not
restart: restarting cannot bring the file back, an admin must restore it or say to start afresh.
"""

from __future__ import annotations

import glob
import secrets
import time
from pathlib import Path

import structlog

from gateway.filemodes import write_private_bytes
from gateway.store.fileguard import StoreUnusable

log = structlog.get_logger(__name__)


def marker_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.id")


def rescued_copies(db: Path) -> list[Path]:
    """Copies `gateway.store.rescue` made of this database when it was deleted, oldest first."""
    return sorted(db.parent.glob(f"{glob.escape(db.name)}.rescued-*"))


def refuse_lost(db: Path) -> None:
    """Raise `StoreUnusable` when `db` (missing or empty) is known to have existed; else nothing.

    A fresh install (no marker, no rescued copy) passes, and the database is created as before.
    """
    marker = marker_path(db)
    has_marker = marker.exists()
    rescued = rescued_copies(db)
    if not has_marker and not rescued:
        return
    state = "is empty" if db.exists() else "is missing"
    source = "the backup (a `smsgw backup` copy"
    source += f", or the rescued copy {rescued[-1]})" if rescued else ")"
    source = f"{source} with `smsgw restore BACKUP`"
    away = f"move {', '.join(map(str, rescued))} out of {db.parent}"
    fresh = f"remove {marker}" + (f" (and {away})" if rescued else "") if has_marker else away
    raise StoreUnusable(
        f"database {db} {state}, but a database existed there ({marker if has_marker else rescued[-1]});"
        f" refusing to start with a new, empty one (queued SMS, opt-outs, accounts and billing state"
        f" would be lost). Restore {source}, or {fresh}"
        " to start with a new, empty database"
    )


def record(db: Path, now: float, *, created: bool) -> None:
    """Write the marker for the database at `db` unless it is there; a failure only warns.

    Durable (fsynced) because it is what stands between a lost file and an empty queue.
    """
    marker = marker_path(db)
    if marker.exists():
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    how = "created" if created else "first opened with a marker"
    text = (
        f"# smsgw: the database {db.name} beside this file was {how} at {stamp}.\n"
        f"# While this file exists smsgw refuses to start without {db.name} rather than create an\n"
        "# empty one. Remove it only to start over with a new, empty database.\n"
        f"{'created' if created else 'marked'} = {stamp}\n"
        f"id = {secrets.token_hex(8)}\n"
    )
    try:
        write_private_bytes(marker, text.encode())
    except OSError as exc:
        log.warning("store.marker_failed", path=str(marker), error=exc.strerror or str(exc))
