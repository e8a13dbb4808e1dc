"""Private files: the database, its WAL, the status file and the simulator's log hold password hashes
and SMS texts, so they are created readable by their owner only, whatever the umask.

Outside systemd (whose unit sets `UMask=0027`) the usual umask 022 would leave them readable by every
user of the machine. A mode passed to `open(2)` is only narrowed by the umask, never widened, so
creating with 0600 is enough; an existing file found readable by others is narrowed once, with a
warning, because an earlier version created it so.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PRIVATE = 0o600
PRIVATE_DIR = 0o700
STATE_DIR_MODE = 0o750  # the state directory: its files are private each; billing_dir may be in it
_OTHERS = stat.S_IRWXO


def mode_text(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def readable_by_others(path: Path) -> int | None:
    """The file's mode when every user may read it, else None (also when it cannot be examined)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return mode if mode & stat.S_IROTH else None


def create_private(path: Path) -> None:
    """Create an empty file 0600 unless it exists, so that whoever opens it next (SQLite) keeps that mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE))
    except FileExistsError:
        pass


def tighten(*paths: Path) -> None:
    """Take every permission of other users away from those of `paths` that exist; one warning for all."""
    changed: list[str] = []
    for path in paths:
        try:
            mode = path.stat().st_mode
            if mode & _OTHERS and stat.S_ISREG(mode):
                path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
                changed.append(f"{path} ({mode_text(mode)} -> {mode_text(mode & ~_OTHERS)})")
        except FileNotFoundError:
            pass  # no WAL after a clean close: nothing to narrow
        except OSError as exc:
            log.warning("files.tighten_failed", path=str(path), error=exc.strerror)
    if changed:
        log.warning("files.mode_tightened", files=changed, reason="readable by every user of the machine")


def prepare_private(path: Path, *companions: Path) -> None:
    """Before a private file is opened by a library that creates it with its own mode (SQLite)."""
    create_private(path)
    tighten(path, *companions)


def write_private(path: Path, data: str) -> None:
    """Write `path` whole, created or truncated with mode 0600 (an older, wider file is narrowed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if stat.S_IMODE(os.fstat(fd).st_mode) & _OTHERS:
            os.fchmod(fd, PRIVATE)
        f.write(data)


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> None:
    """Make `path` (and missing parents) `mode` (0700); an existing one open to other users is
    narrowed, warned.

    For a directory of files holding texts: its mode keeps other users out of files created before
    they were private as well.
    """
    if not path.is_dir():
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for p in reversed(missing):
            try:
                p.mkdir(mode)  # pathlib's parents=True would make the parents 0777 less the umask
                p.chmod(mode)  # exactly: a stricter umask (077) would keep a group out for good
            except FileExistsError:
                pass  # made by another writer in between
    try:
        mode = path.stat().st_mode
        if mode & _OTHERS:
            path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
            log.warning(
                "files.mode_tightened",
                files=[f"{path} ({mode_text(mode)} -> {mode_text(mode & ~_OTHERS)})"],
                reason="readable by every user of the machine",
            )
    except OSError as exc:
        log.warning("files.tighten_failed", path=str(path), error=exc.strerror)


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write `path` whole and fsync it, created or truncated with mode 0600 (a wider one is narrowed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
    with os.fdopen(fd, "wb") as f:
        if stat.S_IMODE(os.fstat(fd).st_mode) & _OTHERS:
            os.fchmod(fd, PRIVATE)
        f.write(data)
        f.flush()
        os.fsync(fd)
