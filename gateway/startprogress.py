"""The daemon's start while it checks and upgrades its database (`StartProgress`): told to systemd, the
log and the commands.

Apart from `gateway.supervisor`, which held it: the store takes it as a type, and importing it from
the supervisor put the supervisor, and what it imports in turn, behind the store. Its writes of the
start file (`gateway.housekeeping.write_status`) are imported when it writes, by the daemon's start.
"""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import structlog

from gateway.sdnotify import sd_notify, watchdog_interval

log = structlog.get_logger(__name__)

# The start's integrity check reads the whole database: 150 MB/s was measured cold, a slow disk is
# assumed here. Past START_CHECK_FREE_SECONDS of it, systemd is asked for the time (a store of some
# 15 million messages outlasted the default TimeoutStartSec of 90 s, and every start was killed).
CHECK_BYTES_PER_SECOND = 50e6
START_CHECK_FREE_SECONDS = 10.0
# While the check and migrations run, systemd is asked for this much more each `watchdog_interval()`.
EXTEND_AHEAD_SECONDS = 30.0


def database_bytes(db: Path) -> int:
    """The database and its WAL: what the start's integrity check reads."""
    size = 0
    for path in (db, Path(f"{db}-wal")):
        with suppress(OSError):
            size += path.stat().st_size
    return size


def extend_start_for(db: Path) -> float:
    """Before the database is checked: EXTEND_TIMEOUT_USEC for as long as reading it may take, and
    the 90 s systemd gives a start, when that is more than START_CHECK_FREE_SECONDS; the estimate.

    A first guess only: a disk slower than assumed (31 MB/s was measured cold) is covered by
    `StartProgress`, which asks again while the check and the migrations go on."""
    seconds = database_bytes(db) / CHECK_BYTES_PER_SECOND
    if seconds > START_CHECK_FREE_SECONDS:
        sd_notify(f"EXTEND_TIMEOUT_USEC={int((seconds + 90) * 1e6)}")
    return seconds


class StartProgress:
    """The daemon's start while it checks and upgrades its database: told to systemd, the log and
    the commands, and its start allowance extended for as long as the work goes on.

    One estimate of the check's time was asked once: on a disk slower than assumed a large database
    outlasted it, and systemd killed the start mid-check and began it again, for ever. Instead
    `tick` (SQLite's progress handler on the connection during the check and the migrations, and
    each turn of a wait for the write lock) asks for EXTEND_AHEAD_SECONDS more every
    `watchdog_interval()`: a start that stops making progress is still killed that long after.
    Each step is also written to the start file (`gateway.statusfile`), where `smsgw status` and
    every other command read what the daemon is doing.
    """

    def __init__(self, db: Path, state_dir: Path, *, every: float | None = None) -> None:
        from gateway import __version__

        self.db = db
        self.state_dir = state_dir
        self.version = __version__
        self.every = watchdog_interval() if every is None else every
        self._next = time.monotonic() + self.every
        self._upgrade: dict[str, Any] = {}
        self._waits_said: set[int] = set()

    def checking(self) -> None:
        """Before the integrity check: the line, systemd's status, the first estimate, the start file."""
        from gateway.housekeeping import write_status
        from gateway.statusfile import START_FILE, size_words

        size = database_bytes(self.db)
        estimate = extend_start_for(self.db)
        log.info("store.checking", path=str(self.db), bytes=size, estimate_seconds=round(estimate, 1))
        sd_notify(f"STATUS=checking the database ({size_words(size)})")
        checking = {"version": self.version, "phase": "checking", "bytes": size}
        write_status(self.state_dir / START_FILE, checking)
        self._next = time.monotonic() + self.every

    def upgrading(self, at: int, to: int) -> None:
        """Before migration `at + 1` of an existing database (one being created says nothing)."""
        from gateway.housekeeping import write_status
        from gateway.statusfile import START_FILE

        if not self._upgrade:
            self._upgrade = {"version": self.version, "phase": "upgrading", "from": at, "to": to}
        sd_notify(f"STATUS=upgrading the database: schema {at + 1} of {to}")
        write_status(self.state_dir / START_FILE, {**self._upgrade, "at": at})
        self.tick()

    def upgraded(self, schema: int) -> None:
        """After a migration committed: the start file says the schema the database has now. Said
        only before each migration, a start killed after the last one read "upgrading ... (at 74)"
        of a database at 75."""
        from gateway.housekeeping import write_status
        from gateway.statusfile import START_FILE

        if self._upgrade:
            write_status(self.state_dir / START_FILE, {**self._upgrade, "at": schema})

    def waiting(self, migration: int) -> None:
        """A turn of the wait for the database's write lock (which another process holds) before
        `migration`: said once for each."""
        if migration not in self._waits_said:
            self._waits_said.add(migration)
            log.warning(
                "store.lock_wait",
                path=str(self.db),
                migration=migration,
                note="another process holds the database's write lock (an smsgw command, a backup,"
                " an sqlite3 shell): the start waits for it",
            )
        self.tick()

    def tick(self) -> int:
        """SQLite's progress handler: 0 lets the statement go on."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            sd_notify(f"EXTEND_TIMEOUT_USEC={int(EXTEND_AHEAD_SECONDS * 1e6)}")
        return 0

    def opened(self) -> None:
        """The database open: the start file says so and stays until the daemon's first status file
        (`housekeeping`). Removed here, a start killed before that first write left the status file of
        the daemon before the upgrade alone, and `smsgw status` named that one's pid as the daemon
        that exited, nothing said of the start that upgraded the database."""
        from gateway.housekeeping import write_status
        from gateway.statusfile import START_FILE

        opening = {**self._upgrade, "at": self._upgrade["to"]} if self._upgrade else {"phase": "opening"}
        write_status(self.state_dir / START_FILE, {"version": self.version, **opening})

    def done(self) -> None:
        """The start failed to open the database: it says why itself; the start file goes."""
        from gateway.statusfile import remove_starting

        remove_starting(self.state_dir)
