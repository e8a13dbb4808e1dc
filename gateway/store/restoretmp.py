"""The copy `smsgw restore` writes before it swaps it in, and the ones killed restores left.

The copy is as large as the backup and named with a dot (`.smsgw.db.restore-PID.tmp`, with
SQLite's `-journal` beside it while it is written), so `ls` does not show it, and no backup or
rescue takes it for a database. A restore killed midway (kill -9, a closed terminal, a reboot)
never removes its own: the next restore and the daemon's start do, once its process is gone.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path


def copy_path(db: Path, pid: int) -> Path:
    """Where the restore running as `pid` writes its copy of the backup for `db`."""
    return db.with_name(f".{db.name}.restore-{pid}.tmp")


def remove_unfinished(db: Path) -> list[tuple[Path, int, int]]:
    """Remove the copies (and their `-journal`) that restores to `db` left when killed: (path, pid,
    bytes) of each. A restore still running keeps its copy."""
    ours = re.compile(rf"\.{re.escape(db.name)}\.restore-([1-9][0-9]{{0,6}})\.tmp(-journal)?")
    return remove_dead_copies(db.parent, ours, pid_group=1)


def remove_dead_copies(
    directory: Path, ours: re.Pattern[str], *, pid_group: int
) -> list[tuple[Path, int, int]]:
    """Remove the files in `directory` named as `ours` matches whose writer (the pid in group
    `pid_group`) is gone: (path, pid, bytes) of each. Only regular files of this user; a copy still
    being written keeps its place. Killed backups and restores leave such copies, each as large as
    the database, and nothing else ever removes them."""
    removed: list[tuple[Path, int, int]] = []
    try:
        names = list(directory.iterdir())
    except OSError:  # a directory we may write in but not list: nothing to look at
        return removed
    for path in sorted(names):
        found = ours.fullmatch(path.name)
        if found is None or _alive(pid := int(found[pid_group])):
            continue
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                continue
            path.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove
        removed.append((path, pid, st.st_size))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
