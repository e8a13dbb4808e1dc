"""One phone's submits on a CIMD2 link go a second apart, so that no two share a delivery report key.

CIMD2 has no message id: a report names its SMS by the SMSC's 060 stamp, which has one-second
resolution, and the phone's number (protocols.md 1.9). Two SMS to one phone accepted in one second
had one key, and their reports went to them oldest first whatever the SMSC reported for which: the
second failed and the first delivered bounced the first sender's mail; a 4-part SMS whose part 4
failed bounced "part 1 of 4". So a submit to a phone waits until a second has passed since the
SMSC answered the previous submit to that phone (the SMSC stamped that one no later than its
answer, so this one gets a later second), while submits to other phones go on meanwhile.

Those waiting submits hold places the dispatcher gave the link: the link asks for `parked_places`
beyond its window (`Cimd2Link.stats`), so that a long SMS to one phone does not stop the link for
the others. Only the window (`Conn.numbers`) limits what is on the wire; as the dispatcher's pacing
was spent when they were handed over, they are paced again to the link's rate as they go
(`Cimd2Link.submit`), or released together they would go faster than the operator's contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from smsc.pacing import TokenBucket

GAP_SECONDS = 1.0  # the 060 stamp's resolution
# Places beyond the window for submits waiting for their phone's second: a long SMS's parts (most
# have at most a few), or SMS to several phones each waiting its own second. At least a second's
# worth of the link's rate: with 8 alone, long SMS to many phones went 8 parts a second whatever the
# rate (a bulk of 4-part SMS 15 times slower); the link paces them again as they reach the wire.
PARKED = 8
MAX_PARKED = 1000


def parked_places(max_per_second: float | None) -> int:
    """The places beyond the window a link at `max_per_second` takes for waiting submits."""
    if max_per_second is None:
        return PARKED
    return max(PARKED, min(int(max_per_second * GAP_SECONDS), MAX_PARKED))


def wire_pacing(max_per_second: float | None, places: int) -> TokenBucket | None:
    """The contract's rate again at the wire (as the dispatcher's `LinkPacer` has it), for the
    submits that waited for their phone's second after their pacing token was spent."""
    if max_per_second is None:
        return None
    per_second = max(1, int(max_per_second))
    return TokenBucket(max_per_second, burst=max(1, min(places, per_second)), per_second=per_second)


@dataclass(slots=True)
class Turn:
    """One phone's submits: one at a time, each after `answered` + the gap."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answered: float = float("-inf")  # loop time of the SMSC's answer to the last submit written
    users: int = 0


class Spacing:
    """The phones a link's submits wait for, by destination; an entry goes a gap after its last use."""

    def __init__(self, gap: float = GAP_SECONDS) -> None:
        self.gap = gap
        self._turns: dict[str, Turn] = {}

    def __len__(self) -> int:
        return len(self._turns)

    @asynccontextmanager
    async def turn(self, destination: str) -> AsyncIterator[Turn]:
        """Wait until a submit to `destination` may go; the caller calls `answered` once the one it
        writes is answered (or its fate is unknown). A submit that writes nothing leaves no wait."""
        loop = asyncio.get_running_loop()
        turn = self._turns.get(destination)
        if turn is None:
            turn = self._turns[destination] = Turn()
        turn.users += 1
        try:
            async with turn.lock:
                if (wait := turn.answered + self.gap - loop.time()) > 0:
                    await asyncio.sleep(wait)
                yield turn
        finally:
            turn.users -= 1
            if turn.users == 0:
                later = max(turn.answered + self.gap - loop.time(), 0.0)
                loop.call_later(later, self._forget, destination, turn)

    @staticmethod
    def answered(turn: Turn) -> None:
        """The SMSC answered the submit written in `turn` (or may hold it): the next waits a gap."""
        turn.answered = asyncio.get_running_loop().time()

    def _forget(self, destination: str, turn: Turn) -> None:
        if turn.users or self._turns.get(destination) is not turn:
            return
        loop = asyncio.get_running_loop()
        if (left := turn.answered + self.gap - loop.time()) > 0:  # used again since: its gap not over
            loop.call_later(left, self._forget, destination, turn)
        else:
            del self._turns[destination]
