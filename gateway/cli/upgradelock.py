"""A command that upgrades the database does it alone: no daemon starting and no other command
upgrades it beside it.

Every command opens the store, and opening an older database upgrades it. A daemon in its start
holds the state directory's lock, and commands leave the upgrade to it (`common.older_schema_under_a_daemon`);
but a command that found no daemon and began upgrading did so with nothing held, so a daemon
started a moment later (or another command, two monitoring checks at once) ran the remaining
migrations beside it: each process's record of the upgrade held half of it. Now the command takes
the daemon's lock for the length of its upgrade, its lock file saying so (`statelock.upgrade_lock`):
a daemon starting meanwhile waits for it and then finds the schema current, another command
refuses, and the command that did the upgrade says so (`common.open_store`).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING

from gateway import statelock
from gateway.cli.common import CliError, older_schema_under_a_daemon

if TYPE_CHECKING:
    from gateway.config import Config


class UpgradeUnderway(CliError):
    """Another command is upgrading the database: exit 1, as for a daemon in its start."""

    def __init__(self, cfg: Config, pid: int | None, command: str) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"{who} ({command}) is upgrading the database {cfg.db_path}; try again when it is done"
        )


@contextmanager
def upgrading_alone(cfg: Config) -> Iterator[None]:
    """The block (opening the store, which migrates) holds the state directory's lock where the
    database's schema is older than this smsgw's; DaemonStarting or UpgradeUnderway when a daemon
    or another command took it first and the schema is still old."""
    fd = _take(cfg)
    try:
        yield
    finally:
        if fd is not None:
            statelock.end_upgrade(fd)


def _take(cfg: Config) -> int | None:
    if not _older(cfg):
        return None  # current, new (created in one step) or unreadable (the open says why)
    try:
        return statelock.upgrade_lock(cfg.state_dir, _command())
    except OSError:
        return None  # no lock file here (another user's state directory): the open says what is wrong
    except statelock.StateDirBusy as exc:
        if (older := older_schema_under_a_daemon(cfg)) is not None:
            raise older from None  # a daemon in its first moments: the upgrade is its own
        if not _older(cfg):
            return None  # upgraded by the holder meanwhile: nothing for this command to do
        if exc.upgrading is not None:
            raise UpgradeUnderway(cfg, exc.pid, exc.upgrading) from None
        raise CliError(str(exc)) from None


def _older(cfg: Config) -> bool:
    from gateway.filemodes import refuse_unsafe_database
    from gateway.store.schema import SCHEMA_VERSION

    try:
        refuse_unsafe_database(cfg.db_path)  # a planted link or file is never read; Store.open names it
    except OSError:
        return False
    if not (cfg.db_path.is_file() and cfg.db_path.stat().st_size > 0):
        return False
    try:
        with closing(sqlite3.connect(f"file:{cfg.db_path}?mode=ro", uri=True, timeout=2)) as conn:
            (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
    except (sqlite3.Error, TypeError):
        return False
    return int(version) < SCHEMA_VERSION


def _command() -> str:
    """`smsgw billing run`, for the lock file: what another command and the daemon's log name."""
    words = statelock.command_words(sys.argv[1:])
    return f"smsgw {words}" if words else "an smsgw command"
