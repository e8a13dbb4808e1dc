"""A reader that pins the WAL: how long TRUNCATE checkpoints have found one in the way, said.

A reader that holds a snapshot (an sqlite3 shell left in a transaction, a long report, a backup)
keeps any checkpoint from cutting the WAL (`gateway.store.checkpoint`), which then grows with every
mail until it ends. A short read ends unreported; one past `WAL_PINNED_WARN_SECONDS` or
`WAL_PINNED_WARN_BYTES` is logged as `store.wal_pinned`, and `smsgw status` and systemd's STATUS=
line show it until a TRUNCATE gets through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# A reader that has held TRUNCATEs off this long (or let the WAL grow this large) is no backup's
# snapshot of a moment: it is reported, then again at most every WAL_PINNED_REPEAT_SECONDS.
WAL_PINNED_WARN_SECONDS = 30.0
WAL_PINNED_WARN_BYTES = 256 * 1024 * 1024
WAL_PINNED_REPEAT_SECONDS = 60.0


class PinWatch:
    """How long TRUNCATE checkpoints have found a reader in the way, and whether it was reported.

    Only the event loop's thread uses it (`CheckpointScheduling._checkpoint`, `wal_pinned`): the
    checkpoint thread just reports `busy`. A short read (most backups) ends unreported, the INFO
    `store.checkpointed ... busy=1` lines its only trace, as before.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.since: float | None = None  # the first TRUNCATE a reader held off, of this run
        self.warned_at: float | None = None  # the last `store.wal_pinned` (None: not reported yet)

    def busy(self, wal_bytes: int) -> None:
        """A TRUNCATE met a reader it could not wait out: warn once the pin lasts, then each minute."""
        now = self.monotonic()
        if self.since is None:
            self.since = now
        lasted = now - self.since
        if self.warned_at is None:
            if lasted <= WAL_PINNED_WARN_SECONDS and wal_bytes <= WAL_PINNED_WARN_BYTES:
                return
        elif now - self.warned_at < WAL_PINNED_REPEAT_SECONDS:
            return
        self.warned_at = now
        log.warning(
            "store.wal_pinned",
            wal_bytes=wal_bytes,
            for_seconds=round(lasted, 1),
            hint="a reader holds an old snapshot (an open sqlite3 shell, a long report or backup):"
            " the WAL grows with every mail until it ends",
        )

    def ended(self, wal_bytes: int) -> None:
        """A TRUNCATE got through: the reader is gone (said only if its pin was reported)."""
        if self.since is not None and self.warned_at is not None:
            lasted = self.monotonic() - self.since
            log.info("store.wal_unpinned", wal_bytes=wal_bytes, for_seconds=round(lasted, 1))
        self.since = self.warned_at = None

    def report(self, wal_bytes: int) -> dict[str, Any] | None:
        """For the status file, while the pin is reported; None otherwise."""
        if self.since is None or self.warned_at is None:
            return None
        return {"wal_bytes": wal_bytes, "for_seconds": round(self.monotonic() - self.since, 1)}
