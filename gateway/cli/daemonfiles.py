"""The files of the state directory that belong to the daemon, which no command may write over.

`smsgw backup --force var/smsgw.db-wal` (what tab completion offers after `smsgw.db`) replaced the
live database's WAL with the copy: the running daemon saw its file replaced and stopped, and a
command run meanwhile read "database disk image is malformed". Only `smsgw.db` itself was refused.
A path is compared by its file (device and inode) where one exists, so a symlink, a hard link or
another spelling (`var/./smsgw.db-wal`) is found too, and by its resolved path where none does: a
WAL or journal written where none was yet is replayed into the database at the next open.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config

# SQLite's files beside the database, and what each is called in a refusal.
COMPANIONS = {"-wal": "WAL", "-shm": "WAL index", "-journal": "rollback journal"}


def _database(cfg: Config) -> dict[Path, str]:
    db = cfg.db_path
    files = {db: "the live database itself"}
    files.update({Path(f"{db}{end}"): f"the live database's {what}" for end, what in COMPANIONS.items()})
    return files


def own_files() -> dict[str, str]:
    """The daemon's files in its state directory by name, with what a refusal calls each; the
    sudo hints (`gateway.sudoline`) read the same names to tell smsgw's directory from a shared one."""
    from gateway.relayloginkept import KEPT_FILE
    from gateway.statelock import LOCK_FILE, USE_FILE
    from gateway.statusfile import START_FILE, STATUS_FILE
    from gateway.tlscert import SELF_CERT, SELF_KEY, SELF_LOCK
    from gateway.web.initialpassword import INITIAL_PASSWORD_FILE

    return {
        LOCK_FILE: "the daemon's lock file",
        USE_FILE: "the file commands lock while they have the database open",
        STATUS_FILE: "the daemon's status file",
        START_FILE: "the daemon's start status file",
        KEPT_FILE: "the relay's failed logins of the last ten minutes",
        SELF_CERT: "the daemon's TLS certificate",
        SELF_KEY: "the daemon's TLS key",
        SELF_LOCK: "the lock of the daemon's self-signed TLS pair",
        INITIAL_PASSWORD_FILE: "the web panel's initial password",
    }


def _named(cfg: Config) -> dict[Path, str]:
    """The daemon's files by name, existing or not, with what a refusal calls each."""
    return _database(cfg) | {cfg.state_dir / name: what for name, what in own_files().items()}


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: nothing of ours is reached through it
        return path.absolute()


def _match(path: Path, files: dict[Path, str], others: list[Path]) -> str | None:
    """What `path` is among `files` (or `others`, the state_dir's files), by name or by file."""
    real = _resolved(path)
    for own, what in files.items():
        if real == _resolved(own):
            return f"{what} ({own})"
    try:
        st = os.stat(path)
    except OSError:  # nothing there yet: only its name can be ours
        return None
    for own in [*files, *others]:  # a hard link has a name of its own
        try:
            if os.path.samestat(st, os.lstat(own)):
                what = files.get(own, "a file of the daemon's state_dir")
                return f"{what} ({own}, the same file by another name)"
        except OSError:
            continue
    return None


def database_file(cfg: Config, path: Path) -> str | None:
    """What `path` is among the live database and its companions, or None (a restore's input)."""
    return _match(path, _database(cfg), [])


def daemon_file(cfg: Config, path: Path) -> str | None:
    """What `path` is among the daemon's files ("the live database's WAL ..."), or None for any other.

    Every file directly in state_dir counts, whatever its name and whether it exists yet: the
    daemon's own there are more than the names above (the database's marker, its WAL flag, the
    simulator's journal), and one added later would otherwise slip through. A directory below it (a
    backups/ of the admin's) does not."""
    try:
        entries = [Path(e.path) for e in os.scandir(cfg.state_dir) if e.is_file(follow_symlinks=False)]
    except OSError:
        entries = []
    if (what := _match(path, _named(cfg), entries)) is not None:
        return what
    state = _resolved(cfg.state_dir)
    return f"a file of the daemon's state_dir {state}" if _resolved(path).parent == state else None
