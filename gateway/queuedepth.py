"""How many SMS parts wait to go, and for which accounts: the queue's high-water mark refuses new
mail by it (451 4.3.1), and `smsgw status` shows it.

A COUNT over the waiting parts reads every one of them: 10-30 ms with 200,000 waiting (the default
mark, which a campaign queued behind an SMSC outage reaches), once a second on the event loop, each
time a stall of every SMTP session and link (a mark raised to a million: 0.15 s). It is counted on a
reader thread instead, and the longer a count takes the less often it runs (a twentieth of the time
at most): a big queue's mark is read a second or more late, which a mark far above any one mail allows.

The mark is shared out between the accounts with SMS waiting (`judge`): past it, an account holding
more than its share is answered 451, the others' mail is still taken; past twice the mark, every
account's is. One account's campaign queued behind an SMSC outage used to refuse every company's
mail; the queue stays bounded all the same (each account below its share adds at most that share).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.store.queueage import waiting_by_account
from gateway.store.reader import ReadThread

log = structlog.get_logger(__name__)

EVERY_SECONDS = 1.0  # at least this long between two counts
SHARE = 20  # and at least this many times as long as the last count took


@dataclass(frozen=True, slots=True)
class Backlog:
    """The waiting parts as last counted, and whose mail the high-water mark refuses."""

    total: int = 0
    over: frozenset[int | None] = frozenset()  # accounts past their share of the mark
    everyone: bool = False  # past twice the mark: every account's mail is refused

    def refuses(self, account_id: int | None) -> bool:
        return self.everyone or account_id in self.over

    def wire(self) -> bytes:
        """For an intake worker, which checks the mark itself: `total everyone ids` (`-` for no
        account)."""
        ids = ",".join("-" if a is None else str(a) for a in sorted(self.over, key=lambda a: a or 0))
        return f"{self.total} {int(self.everyone)} {ids}".encode()

    @classmethod
    def from_wire(cls, payload: bytes) -> Backlog:
        total, everyone, ids = payload.decode().split(" ")
        over = frozenset(None if a == "-" else int(a) for a in ids.split(",") if a)
        return cls(int(total), over, everyone == "1")


def judge(counts: dict[int | None, int], mark: int) -> Backlog:
    """Below the mark nobody is refused; past it, the accounts holding at least the mark divided
    between the accounts with parts waiting; past twice the mark, everyone. With one account
    waiting this is the plain mark it always was."""
    total = sum(counts.values())
    if total < mark:
        return Backlog(total)
    if total >= 2 * mark:
        return Backlog(total, everyone=True)
    holders = [a for a, n in counts.items() if n > 0]
    share = mark / max(1, len(holders))
    return Backlog(total, frozenset(a for a in holders if counts[a] >= share))


class QueueDepth:
    """The last count of waiting parts, refreshed off the loop; nothing is refused until the first
    count."""

    def __init__(self, path: Path, mark: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.backlog = Backlog()
        self.mark = mark
        self._reader = ReadThread(path, "queue-depth")
        self._clock = clock
        self._next = 0.0
        self._counting: asyncio.Task[None] | None = None

    @property
    def value(self) -> int:
        return self.backlog.total

    def refresh(self) -> None:
        """Start a count if none is under way and the last one is old enough (cheap otherwise)."""
        if self._counting is None and self._clock() >= self._next:
            self._counting = asyncio.create_task(self._count(), name="queue-depth")

    async def _count(self) -> None:
        started = self._clock()
        try:
            self.backlog = judge(await self._reader.run(waiting_by_account), self.mark)
        except Exception as e:  # the last figure stands; the store's trouble is told by its writes
            log.warning("queue.depth_unread", error=str(e))
        finally:
            took = self._clock() - started
            self._next = self._clock() + max(EVERY_SECONDS, SHARE * took)
            self._counting = None

    async def close(self) -> None:
        if self._counting is not None:
            await asyncio.gather(self._counting, return_exceptions=True)
        await asyncio.to_thread(self._reader.close)
