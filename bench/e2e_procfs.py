"""What the benchmarks read of a process and of the database: RSS, CPU time, workers, pages in use.

From /proc, so that the figures are those of the daemon's processes alone (not of the load
generator or the simulator beside them on the same machine).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: steadier than wall-clock rates on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The daemon's child processes (intake workers), which the CPU figure must include."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds of the daemon's own process and of its intake workers together."""
    workers = 0.0
    for child in children(pid):
        try:
            workers += cpu_seconds(child)
        except OSError:
            pass
    return cpu_seconds(pid), workers


def db_bytes(path: Path) -> int:
    """The bytes of the database's pages in use, as a reader sees it (the WAL's commits included):
    what a mail adds to the disk once checkpointed, for sizing the state directory."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (pages,), (free,), (size,) = (
            conn.execute(f"PRAGMA {pragma}").fetchone()
            for pragma in ("page_count", "freelist_count", "page_size")
        )
        return (pages - free) * size
    finally:
        conn.close()


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0
