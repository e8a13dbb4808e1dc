"""One daemon per state directory.

Two daemons on one database would each claim and send from the same queue, each run its own group
commit and outbox, and each believe its caches: the design has one writer. Ports do not prevent it
(a second config may name other ports), so the daemon holds an exclusive `flock` on a file in the
state directory for as long as it runs. The kernel drops the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind; the file names the holder's pid for the message.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "smsgw.pid"


class StateDirBusy(RuntimeError):
    """Another daemon runs on this state directory."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"smsgw is already running ({who}) with state_dir {state_dir}; see `smsgw status`,"
            " stop it before starting another"
        )


@contextmanager
def held(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock while the block runs; StateDirBusy if another holds it."""
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)  # never through a link
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise StateDirBusy(state_dir, int(text) if text.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # drops the lock (the file stays: removing it would race the next holder)
