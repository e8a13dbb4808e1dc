"""A daemon's start that finds a command upgrading the database waits for it, told to systemd and
the log, and then finds the schema current (`statelock.upgrade_lock`).

Refused as "already running", systemd started it again 5 s later into the same refusal while the
command ran; going ahead, it ran the rest of the migrations beside the command. `smsgw run` also
takes the state directory's lock before its heavy imports (`claim_at_start`), so that a command
run in its first seconds sees a daemon starting and leaves the upgrade to it.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from gateway import statelock

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.startprogress import StartProgress

log = structlog.get_logger(__name__)


class UpgradeWait:
    """`statelock.UpgradeWaiter` of a daemon's start: one log line for each command waited for,
    systemd's status, and its start allowance extended for as long as the wait goes on."""

    def __init__(self, db: Path, state_dir: Path) -> None:
        self.db = db
        self.state_dir = state_dir
        self.pid: int | None = None
        self.command = ""
        self._since = 0.0
        self._progress: StartProgress | None = None

    def waiting(self, pid: int | None, upgrading: str) -> None:
        from gateway.sdnotify import sd_notify
        from gateway.startprogress import StartProgress

        if self._progress is None:
            self._progress = StartProgress(self.db, self.state_dir)
            self._since = time.monotonic()
        if (pid, upgrading) != (self.pid, self.command):
            self.pid, self.command = pid, upgrading
            log.warning(
                "store.upgrade_wait",
                path=str(self.db),
                pid=pid,
                command=upgrading,
                note="a command began upgrading the database before this start: the start waits for it"
                " to end rather than upgrade the database beside it",
            )
            sd_notify(f"STATUS=waiting for pid {pid} ({upgrading}) to finish upgrading the database")
        self._progress.tick()

    def waited(self) -> None:
        log.info(
            "store.upgraded_by",
            path=str(self.db),
            pid=self.pid,
            command=self.command,
            waited_seconds=round(time.monotonic() - self._since, 1),
            note="that command upgraded the database: this start runs no migration it ran",
        )


def claim_at_start(cfg: Config) -> None:
    """The state directory's lock for `smsgw run`, taken before it imports the daemon: waits for a
    command's upgrade, StateDirBusy where a daemon runs.

    Only in a state directory that exists, is this user's and is writable by no other: the daemon
    makes a missing one, and checks one that every user could write into, before it takes its lock
    (`Daemon.run`)."""
    try:
        st = os.stat(cfg.state_dir)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & stat.S_IWOTH:
        return
    waiter = UpgradeWait(cfg.db_path, cfg.state_dir)
    try:
        statelock.claim(cfg.state_dir, wait=statelock.UPGRADE_WAIT_SECONDS, waiter=waiter)
    except OSError:
        return  # the lock file cannot be made here: the daemon's own attempt says why
