"""Ending a line a killed process left torn in a log file.

Apart from `gateway.logging` because every `smsgw` command does this first, before it parses its
arguments: `smsgw --version` need not import the logging machinery (structlog) for it.
"""

from __future__ import annotations

import os
import stat
from typing import TextIO


def _last_byte(fd: int, size: int) -> bytes | None:
    """The file's last byte, also when the descriptor was opened write-only (as stderr usually is)."""
    try:
        return os.pread(fd, 1, size - 1)
    except OSError:
        pass
    try:
        with open(f"/proc/self/fd/{fd}", "rb") as again:  # Linux: the same file, opened for reading
            again.seek(size - 1)
            return again.read(1)
    except OSError:
        return None


def end_torn_line(stream: TextIO) -> None:
    """Start on a fresh line if the log file ends in the middle of one (a previous run was killed)."""
    try:
        fd = stream.fileno()
        st = os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return  # not a real file (a test's capture, a closed stream)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return  # the journal, a pipe or a terminal: every write is its own record or line already
    last = _last_byte(fd, st.st_size)
    if last != b"\n":  # unreadable (None) counts as torn: an empty line is harmless, a merged one not
        stream.write("\n")
        stream.flush()
