"""Writing one billing file durably: its modes, the write to a temporary name, the rename over the
old file and the fsync of its directory, so that a reader (or the mailer) sees the old file or the
new one, never a part."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from gateway.filemodes import mode_text, owner_name, planted, private_dir

# Billing files hold every SMS of an account (numbers, staff addresses, premium money): no other user
# of the machine reads them, whatever the umask (022 outside systemd made them 0644 in 0755
# directories). The group keeps reading: an accounting group may be given the directory.
BILLING_FILE_MODE = 0o640
BILLING_DIR_MODE = 0o750


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    safe_dir(path.parent)
    # A new name no one can have foreseen, made by this open alone (O_EXCL): a name from the pid,
    # opened to truncate, followed a link planted there to any file this user may write.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, BILLING_FILE_MODE)  # exactly, also under a stricter umask (077)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def safe_dir(directory: Path) -> None:
    """Make `directory` (0750) and refuse it, and the one above it, when another user could have put
    entries in it: a month directory made first by another user stays theirs whatever its mode, and
    the links they put in it send the bills into files they read, or over the database.

    Trusted: this user's directories and root's (an admin's `/srv/billing`, given to a group); a
    directory open to every user is narrowed (as `private_dir` does) and its entries looked at."""
    if not directory.is_dir():
        private_dir(directory, BILLING_DIR_MODE)  # made with its missing parents
    for d in (directory.parent, directory):
        # Whose it is before any chmod: a link another user put there leads to any directory.
        if (owner := os.lstat(d).st_uid) not in (os.geteuid(), 0):
            _refuse(d, f"belongs to user {owner_name(owner)}")
        was = private_dir(d, BILLING_DIR_MODE)  # narrowed if every user could write in it
        if d == directory and (bits := stat.S_IMODE(os.stat(d).st_mode)) & stat.S_IWGRP:
            os.chmod(d, bits & ~stat.S_IWGRP)  # its files are the run's alone: 0750, as it was made
        if (mode := os.stat(d).st_mode) & stat.S_IWOTH:
            _refuse(d, f"is writable by every user ({mode_text(mode)}) and could not be narrowed")
        if (found := planted(d, was, "billing directory")) is not None:
            raise PermissionError(errno.EPERM, found, str(d))


def _refuse(directory: Path, why: str) -> None:
    raise PermissionError(
        errno.EPERM,
        f"billing directory {directory} {why}: another user may make the bills land in files they read,"
        " or overwrite other files; give it to this user (chown) or remove it, then run again",
        str(directory),
    )


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# In a month's directory from the start of a run of the whole month until its summary is written.
# Each file is atomic but a month is many: a run stopped between them (Ctrl-C, a crash of the
# daemon, a full disk) left some accounts' files new, others old or missing, and no summary or an
# older one, and `billing list` showed that as a month like any other. Not `.txt`: no account's file
# (their names never start with `_`), and the panel and `billing list` list only `.txt` files.
INCOMPLETE = "_incomplete"
_INCOMPLETE_TEXT = (
    "A run of the whole month {month} began here and did not finish: the account files may be of two\n"
    "runs, and the summary missing or older than them. `smsgw billing run --month {month}` writes the\n"
    "month again (the daemon's scheduled run does too for a month it has not billed yet) and removes\n"
    "this file once the summary is written.\n"
)


def mark_incomplete(directory: Path, month: str) -> bool:
    """Mark the month's directory as being written; True when a run before this one left it marked."""
    before = (directory / INCOMPLETE).exists()
    write_atomic(directory / INCOMPLETE, [_INCOMPLETE_TEXT.format(month=month).encode()])
    return before


def mark_complete(directory: Path) -> None:
    """The month's files and its summary are written, all from one snapshot."""
    (directory / INCOMPLETE).unlink(missing_ok=True)
    fsync_dir(directory)


def is_incomplete(directory: Path) -> bool:
    return (directory / INCOMPLETE).exists()


class RunUnderWay(OSError):
    """Another run (the daemon's scheduled one, or `smsgw billing run`) is writing the same month.

    Each file is atomic, but two runs at once wrote the month's files from two snapshots, and the one
    that ended first removed the `_incomplete` mark while the other was still writing."""

    def __init__(self, directory: Path, month: str) -> None:
        super().__init__(
            errno.EAGAIN,
            f"another run is writing the billing files of {month} (the daemon's scheduled run, or"
            " another `smsgw billing run`): run again once it has ended",
            str(directory),
        )


def hold_month(directory: Path, month: str) -> int:
    """Take the month's directory for this run alone (an exclusive `flock` on the directory itself:
    no lock file to leave behind, and the kernel lets go of it when a killed run's process ends).
    Returns the descriptor to close when the run is over; RunUnderWay when another run holds it."""
    safe_dir(directory)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _left_behind(fd)
    except BlockingIOError:
        os.close(fd)
        raise RunUnderWay(directory, month) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _left_behind(fd: int) -> None:
    """Remove the temporary files of a run killed mid-file (`write_atomic`'s `.<name>.<random>.tmp`):
    no other run can be writing them while this one holds the month, and each was a whole account's
    file left in the directory for good."""
    for entry in os.scandir(fd):
        name = entry.name
        if name.startswith(".") and name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
            os.unlink(name, dir_fd=fd)
