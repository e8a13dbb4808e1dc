"""Private files: the database, its WAL, the status file and the simulator's log hold password hashes
and SMS texts, so they are created readable by their owner only, whatever the umask.

Outside systemd (whose unit sets `UMask=0027`) the usual umask 022 would leave them readable by every
user of the machine. A mode passed to `open(2)` is only narrowed by the umask, never widened, so
creating with 0600 is enough; an existing file found readable by others is narrowed once, with a
warning, because an earlier version created it so.

A mode protects only a file this user made. A state directory that was open to every user before the
first start may hold a symbolic link or another user's file under a private file's name, planted so
that the password or the database is written where its planter reads it (and SQLite gives the -wal
and -shm the owner of the database). Such a file is never opened for a secret: `UnsafeFile` names it.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PRIVATE = 0o600
PRIVATE_DIR = 0o700
STATE_DIR_MODE = 0o750  # the state directory: its files are private each; billing_dir may be in it
_OTHERS = stat.S_IRWXO
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFile(OSError):
    """A symbolic link, something other than a regular file, or another user's file where a private
    file of this user belongs."""

    def __str__(self) -> str:
        return str(self.strerror)


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no name
        return str(uid)


def _why_unsafe(path: Path, st: os.stat_result) -> str | None:
    """Why `path` (`st` from lstat or fstat) may not hold a private file of this user, else None.

    The owner must be this very user, root included: root is refused elsewhere in a directory of the
    service's user (`refuse_root_in_service_dir`), so each private file is made by whoever reads it."""
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"is a symbolic link (to {os.readlink(path)})"
        except OSError:
            return "is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"belongs to user {owner_name(st.st_uid)}, not to {owner_name(os.geteuid())} who runs this"
    return None


def _unsafe(path: Path, why: str) -> UnsafeFile:
    return UnsafeFile(
        errno.EPERM,
        f"{path} {why}: a file of passwords or texts is never written into it; move it aside (if"
        " another user put it there, that user may have read what was in it) and try again",
        str(path),
    )


def refuse_unsafe(path: Path) -> None:
    """Raise `UnsafeFile` when `path` exists as anything but a regular file of this user."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if (why := _why_unsafe(path, st)) is not None:
        raise _unsafe(path, why)


def refuse_unsafe_database(path: Path) -> None:
    """`refuse_unsafe` for the database and its -wal and -shm, before SQLite reads it at all, and
    the database refused where it has another name too (`other_names`).

    Even a read-only open follows a link at the database's name, parses whatever file it finds there
    (another user's, made to exploit the reader), and creates the -wal and -shm beside it, given that
    file's owner when the reader is root; and one through a hard link makes a WAL of its own beside
    that name, which the daemon using the other name never reads."""
    for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        refuse_unsafe(each)
    try:
        why = other_names(path, os.lstat(path))
    except OSError:
        return  # none: nothing to read
    if why is not None:
        raise UnsafeFile(errno.EPERM, why, str(path))


def other_names(database: Path, st: os.stat_result) -> str | None:
    """Why the database `database` (`st` its lstat) may not be used: it has another name, a hard
    link, which another state_dir may hold; else None.

    The state directory's lock keeps a second daemon out of this directory only: one whose state_dir
    held a hard link to the same file ran beside it, each with its own WAL, its own lock and its own
    id counters, both answering "queued as 20", and the mail one accepted was gone after the other's
    restart. A symbolic link is refused as an unsafe file; this is the other way to one file by two
    names."""
    if not (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
        return None
    return (
        f"database {database} has {st.st_nlink} names (hard links to one file): another smsgw whose"
        " state_dir holds one of them would run on the same database beside this one, both giving the"
        " same queue ids and each losing the other's mail at a restart. Find the other names (`find /"
        f" -xdev -samefile {database}`), stop whatever uses them, and remove them, keeping this one (a"
        " copy for another smsgw or a backup is made with `smsgw backup`, never `ln`, nor `cp`, which"
        " misses the mail still in the -wal beside it); then try again"
    )


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
    """Create an empty file 0600 unless it exists, so that whoever opens it next (SQLite) keeps that mode;
    an existing one must be a regular file of this user (`UnsafeFile`)."""
    try:
        os.close(os.open(path, _NEW, PRIVATE))
    except FileExistsError:
        refuse_unsafe(path)


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
    """Before the database is opened by SQLite, which creates it and its companions (-wal, -shm) with
    its own mode and follows symbolic links: each that exists must be a regular file of this user.

    Refused as `StoreUnusable`: a restart cannot help until an admin looks at the file."""
    try:
        create_private(path)
        for companion in companions:
            refuse_unsafe(companion)
    except UnsafeFile as exc:
        from gateway.store.fileguard import StoreUnusable  # here: the store's modules import this one

        raise StoreUnusable(str(exc)) from exc
    tighten(path, *companions)


def _open_private(path: Path) -> int:
    """A descriptor to write `path` whole: created 0600, or this user's regular file emptied and, if
    wider, narrowed. Checked before it is emptied, never through a symbolic link, and never blocking
    on a FIFO put in its place."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, PRIVATE)
    except OSError:  # ELOOP for a link, ENXIO for a FIFO, EISDIR: said as what they are
        refuse_unsafe(path)
        raise
    try:
        st = os.fstat(fd)
        if (why := _why_unsafe(path, st)) is not None:
            raise _unsafe(path, why)
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        if stat.S_IMODE(st.st_mode) & _OTHERS:
            os.fchmod(fd, PRIVATE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: str) -> None:
    """Write `path` whole, created or emptied with mode 0600 (an older, wider file is narrowed)."""
    with os.fdopen(_open_private(path), "w", encoding="utf-8") as f:
        f.write(data)


def write_new_private(path: Path, data: str) -> None:
    """Write `path` as a new file 0600, whatever stood at that name removed first: a file read once
    by a person (a first password), where no earlier file's owner, mode or links may carry over."""
    path.unlink(missing_ok=True)
    try:
        fd = os.open(path, _NEW, PRIVATE)
    except FileExistsError as exc:  # made again in between: someone else writes into the directory
        raise _unsafe(path, "was made again by someone else as soon as it was removed") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> int | None:
    """Make `path` (and missing parents) `mode` (0700); an existing one open to other users is
    narrowed, warned, and the mode it had is returned (else None).

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
        if mode & _OTHERS and stat.S_ISDIR(mode):  # never a device a path names by mistake
            path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
            log.warning(
                "files.mode_tightened",
                files=[f"{path} ({mode_text(mode)} -> {mode_text(mode & ~_OTHERS)})"],
                reason="readable by every user of the machine",
            )
            return mode
    except OSError as exc:
        log.warning("files.tighten_failed", path=str(path), error=exc.strerror)
    return None


def planted(directory: Path, was: int | None, what: str = "state_dir") -> str | None:
    """When `directory` was writable by every user (`was`, from `private_dir`): why to refuse to start,
    naming its entries that are symbolic links or another user's, else None.

    Any user could have put those there before it was narrowed, under the name of a file that will
    hold passwords or texts. Only then: an admin's own link in a directory no one else could write
    is the admin's choice."""
    if was is None or not was & stat.S_IWOTH:
        return None
    found = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            found.append(f"{entry.name} (a symbolic link to {os.readlink(entry.path)})")
        elif st.st_uid != os.geteuid():
            found.append(f"{entry.name} (belongs to user {owner_name(st.st_uid)})")
    if not found:
        return None
    return (
        f"{what} {directory} was writable by every user ({mode_text(was)}, now narrowed) and holds"
        f" what this user did not make: {'; '.join(found)}; another user may have put them there to read"
        + (
            " the database or the first password: move them aside, then start again"
            if what == "state_dir"
            else " the bills or to make their writing overwrite other files: move them aside, then run again"
        )
    )


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write `path` whole and fsync it, created or emptied with mode 0600 (a wider one is narrowed)."""
    fd = _open_private(path)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(fd)
