"""A full state disk said in words an admin can act on: SQLite says only "database or disk is
full" (or, opening, "disk I/O error"), and a daemon that systemd restarted on a full disk said that,
or a bare "No space left on device", at each start."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def disk_room(state_dir: Path, *, low_only: bool = False, stops: str = "") -> str | None:
    """The room left and what to do; with `low_only`, None unless the room is low (an error that
    may or may not come of a full disk). With `stops` too (what a full disk stops), in the words of
    `status` on a daemon's disk: the disk's size and the floor it is under, so that the admin sees
    how far it is from room rather than a count of bytes alone."""
    try:
        st = os.statvfs(state_dir)
    except OSError:
        return None
    from gateway.store.trouble import space_floor, space_low  # only on an error: the CLI's start stays light

    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    if low_only and not space_low(free, total):
        return None
    if low_only and stops:
        from gateway.statusfile import size_words

        return (
            f"state_dir {state_dir} is nearly full, {size_words(free)} free of {size_words(total)} (under"
            f" {size_words(space_floor(total))}): {stops}; free space there (old logs, backups) or grow the"
            " filesystem"
        )
    return (
        f"{free:,} bytes free on the filesystem of {state_dir}: free space there (or grow it); nothing"
        " accepted is lost, the queued mail goes out once there is room"
    )


def room_note(state_dir: Path | None, exc: BaseException, sep: str = "; ") -> str:
    """`disk_room` to add to the words of `exc`: always for ENOSPC, else when the room is low."""
    if state_dir is None:
        return ""
    room = disk_room(state_dir, low_only=not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC))
    return f"{sep}{room}" if room else ""


def full_disk_note(exc: OSError) -> str:
    """The room left, for a file error no command foresaw (`main`) that is a full disk naming its
    file: `smsgw restore` on a full state disk said only "No space left on device"."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not exc.filename:
        return ""
    return room_note(Path(os.fsdecode(exc.filename)).parent, exc, ": ")
