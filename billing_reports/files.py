"""Writing one billing file durably: its modes, the write to a temporary name, the rename over the
old file and the fsync of its directory, so that a reader (or the mailer) sees the old file or the
new one, never a part."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from gateway.filemodes import private_dir

# Billing files hold every SMS of an account (numbers, staff addresses, premium money): no other user
# of the machine reads them, whatever the umask (022 outside systemd made them 0644 in 0755
# directories). The group keeps reading: an accounting group may be given the directory.
BILLING_FILE_MODE = 0o640
BILLING_DIR_MODE = 0o750


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    private_dir(path.parent, BILLING_DIR_MODE)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, BILLING_FILE_MODE)
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


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
