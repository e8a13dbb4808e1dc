"""Why the daemon could not use `[gateway] state_dir`, said before it tries: by `check-config`, at
`run` (exit 3 where the config must change, 1 where a disk is to be mounted or remounted) and by the
commands that open the database. Re-exported by `gateway.configcheck`, where callers find it.
"""

from __future__ import annotations

import os
from pathlib import Path

from billing_reports.dirproblem import kernel_fs
from gateway.config import Config
from gateway.readonlyfs import NOT_MOUNTED, READ_ONLY_FS, filesystem_read_only
from gateway.store.proclocks import shell_word
from gateway.sudoline import owner_remedy, read_only, runs_service


def state_dir_problem(cfg: Config) -> str | None:
    """Why the daemon could not use `state_dir`, said before it tries (check-config and run)."""
    path = cfg.state_dir
    example = 'e.g. state_dir = "/var/lib/smsgw"'
    if path.exists():
        if not path.is_dir():
            return f"[gateway] state_dir: {path} is a file, not a directory ({example})"
        if (kernel := _on_kernel_fs(path, path, example)) is not None:
            return kernel
        if not os.access(path, os.W_OK | os.X_OK):
            return f"[gateway] state_dir: {path} is not writable by this user; {owner_remedy(path)}"
        if filesystem_read_only(path):  # made so by errors (`emergency_ro`): access() calls it writable
            return f"[gateway] state_dir: {path} is not writable: {READ_ONLY_FS}"
        return None
    if path.is_symlink():  # dangling: mkdir fails on it, and `run` stopped with a bare ENOENT
        # Exit 1 (`refusal_exit`): a disk mounted late (`nofail`, network storage) is waited for.
        return f"[gateway] state_dir: {path} is a link to {os.readlink(path)}, {NOT_MOUNTED}"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"[gateway] state_dir: {path} cannot be created: {parent} is a file ({example})"
    if (kernel := _on_kernel_fs(path, parent, example)) is not None:  # before access(2): root "may" write
        return kernel
    if not os.access(parent, os.W_OK | os.X_OK) or filesystem_read_only(parent):
        if (frozen := read_only(parent)) is not None:
            return f"[gateway] state_dir: {path} does not exist and cannot be created: {frozen}"
        made, user = shell_word(str(path)), shell_word(runs_service())
        return (
            f"[gateway] state_dir: {path} does not exist and cannot be created by this user"
            f" ({parent} is not writable); create it: mkdir -p {made} && chown {user}: {made}"
        )
    return None


def _on_kernel_fs(path: Path, existing: Path, example: str) -> str | None:
    """`state_dir` (or the directory it would be made in) on /proc, /sys and the like: root's access(2)
    says writable, check-config said OK, and `run` stopped with a bare ENOENT, exit 1, restarted by
    the unit forever. As `[gateway] billing_dir` is told (`billing_reports.dirproblem`), exit 3."""
    if (kind := kernel_fs(existing)) is None:
        return None
    return (
        f"[gateway] state_dir: {path} is on {existing}, the kernel's {kind} filesystem, where no files can"
        f" be made: name a directory on a disk ({example})"
    )
