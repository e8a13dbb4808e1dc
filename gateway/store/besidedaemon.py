"""A command's connection beside the running daemon writes only the WAL, never the database file.

The daemon's clean stop lets the next start skip its whole-file check only when nothing but its own
checkpoints wrote the file during the run (`startcheck.OwnWrites`). A command that wrote copied pages
into the file itself: its COMMIT crossing SQLite's automatic checkpoint (1,000 pages, some 4 MB,
where the daemon lets its WAL grow to 16 MB: `smsgw user add`, `optout add`, `account set` under
traffic) or its checkpoint at close (`walcheck.checkpoint_at_close`: `user passwd`, `auth unlock`,
always). The daemon's stop then left no record and the next start read the whole file (0.43 s with
100,000 SMS queued, 8-13 s on 3.9 GB).

So beside the daemon a command's connection checkpoints nothing: its commits stay in the WAL (fsynced
there at each commit, `synchronous=FULL`: as durable as in the file), the daemon's own checkpoints
copy them into the file as they copy its own, and its clean stop empties the WAL and removes the
flag (`walcheck`). Its close is never the last one while the daemon has the file open, so SQLite's
own checkpoint at the last close does not run either. A command run with the daemon stopped
checkpoints as before, and its write leaves the next start a check, as it must.

The daemon is another process holding the state directory's lock (`statelock`; a command upgrading
the schema holds it too, briefly, and its own close checkpoints), asked of the kernel without taking
the lock (`statelock.held_by_another`: F_OFD_GETLK on the OFD lock the holder puts beside its
`flock`). A shared lock taken to look at every command's open and close would make a daemon starting
in that moment refuse, as if another one ran; /proc/locks, read here before, cost each open 0.1 s
with 20,000 locks on the machine. Where the kernel cannot tell (not Linux), a command checkpoints as
before (the next start then checks, as it did). Whether the holder is this process is asked of
`statelock`, never told by a pid: a daemon run in a PID namespace of its own under the host's /proc
(`unshare --pid --fork`) read its own lock in /proc/locks under its host pid, took it for another
process's, and its clean stop skipped its closing checkpoint (the WAL left full beside a reader open
at the stop).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway import statelock
from gateway.statelock import LOCK_FILE


def daemon_runs(db: Path) -> bool:
    """Whether another process holds the daemon's lock on the state directory of `db` now."""
    # The database's directory is the state directory.
    return bool(statelock.held_by_another(db.parent / LOCK_FILE))


def quiet_beside_daemon(conn: sqlite3.Connection, db: Path) -> None:
    """A command's connection: no automatic checkpoint at its commits while the daemon runs."""
    if daemon_runs(db):
        conn.execute("PRAGMA wal_autocheckpoint=0")
