"""What a write held the event loop for: its own statements and its batch's COMMIT (`GroupCommit`).

A write's await measures more than its cost to the loop: it also waits for the WAL's fsync, which runs
in a thread off the loop, and for the writes queued before it. Work paced by that (a clock step's move
in chunks, `gateway.stepmoves.ChunkSize`) slowed down whenever the disk or the other writers did, and
under load took 1.5-3x as long, while the loop's stalls were no smaller: what stalls the loop is the
time on its thread, the statements and the commit. A write learns that time by running its work
through `HeldWrites.timed`, which its batch fills in once it committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Hold:
    """The seconds one write held the loop: its statements, and the COMMIT of the batch it went in."""

    statements: float = 0.0
    commit: float = 0.0

    @property
    def seconds(self) -> float:
        return self.statements + self.commit


class HeldWrites:
    """The group commit's side of `Hold`: the holds of the batch under way, given its COMMIT's time."""

    _holds: list[Hold]

    def timed(self, work: Callable[[], T], hold: Hold) -> Callable[[], T]:
        """`work`, for `write`, timing its statements into `hold`, and the COMMIT of its batch once
        that committed (left at 0 by a batch that failed: its write raises)."""

        def run() -> T:
            self._holds.append(hold)
            started = time.perf_counter()
            try:
                return work()
            finally:
                hold.statements = time.perf_counter() - started

        return run

    def _held(self, commit: float) -> None:
        """The batch under way committed in `commit` seconds: the holds of its pieces get it. A failed
        batch's holds stay in the list until the next commit, which sets them to no purpose: their
        writes raised, and nobody reads them."""
        for hold in self._holds:
            hold.commit = commit
        self._holds.clear()
