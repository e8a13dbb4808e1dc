"""Whether a filesystem is read-only itself, or only as this process sees it mounted; and whether a
refusal before the start waits for a disk (exit 1) rather than for a config change (exit 3).

`statvfs` says ST_RDONLY for both, and they need opposite remedies. systemd's ProtectSystem=strict
gives a unit read-only bind mounts of a filesystem that stays writable: only the unit's
ReadWritePaths= helps, and a restart never does. A filesystem the kernel remounted read-only after
I/O errors (ext4's errors=remount-ro), or one mounted read-only, is read-only for every process:
the disk or the mount wants the admin, and the service starts again once it is writable.
/proc/self/mountinfo tells them apart: each mount's own options, and after the "-" those of the
filesystem under it (its superblock), which every mount of it shares. Current kernels show an ext4
that errors made read-only as `emergency_ro` there, not `ro` (`rw,errors=remount-ro,emergency_ro`),
and `statvfs` and `access()` then call it writable while every write fails with EROFS.
"""

from __future__ import annotations

import os
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
# The superblock options that make a filesystem read-only for every process: mounted so, or made so
# by errors (ext4's `emergency_ro`; taken for writable, a maildir relay on it was told to add
# ReadWritePaths= with exit 3, which the unit never restarts, and `run` stopped at its pid file).
_READ_ONLY = frozenset({"ro", "emergency_ro"})
# Said of a path whose filesystem is read-only itself: the unit's ReadWritePaths= would not help.
READ_ONLY_FS = "its filesystem is mounted read-only (after I/O errors? see dmesg): remount it read-write"
# Said of a state_dir that is a link to nothing: its disk may be mounted late (`nofail`, network
# storage), and the service is to start once it is there.
NOT_MOUNTED = (
    "which does not exist (a disk not mounted yet?); mount it, create that directory"
    " or name another state_dir"
)


def filesystem_read_only(path: Path, mountinfo: Path | None = None) -> bool:
    """The filesystem holding `path` is read-only under every mount of it; False where it is
    writable, where only this mount is read-only, or where it cannot be told (no /proc, no such
    path, a device mountinfo does not list)."""
    try:
        st = os.stat(path)
        lines = (mountinfo or MOUNTINFO).read_text().splitlines()
    except OSError:
        return False
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[2] != device or "-" not in fields:
            continue
        tail = fields[fields.index("-") + 1 :]  # fstype, source, the superblock's options
        if len(tail) >= 3:
            return not _READ_ONLY.isdisjoint(tail[2].split(","))
    return False


def refusal_exit(problem: str) -> int:
    """The exit code of a refusal before the start: 3 (which the unit's RestartPreventExitStatus=
    does not restart on) where the config must change, 1 where the words end in `READ_ONLY_FS` or
    `NOT_MOUNTED`: the config is right, and the service is to start again by itself once the
    filesystem is writable or the disk is mounted."""
    from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE

    return EXIT_FAILURE if problem.endswith((READ_ONLY_FS, NOT_MOUNTED)) else EXIT_CONFIG
