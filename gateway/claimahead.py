"""How many parts the dispatcher claims ahead of the links that are up, counted in their windows.

When a window place frees, the next part is already claimed (durably `active`) and goes out in the
same step, with no claim or other write before it; and claims come in batches of `CLAIM_AHEAD`
windows instead of one per answer. Only links that are up count: with none up nothing is claimed.
The windows are read from the links' pacers at each look, so a throttle or a link going down
changes the next claim at once.

Parts claimed ahead whose links are full keep their turn, and while they fill the claim-ahead no
more is claimed: after a bulk send through one slow or throttled link, the SMS to another operator
waited behind its whole backlog with their own link idle (60 SMS on a link answering after 3 s held
40 for a fast link 17 s; 1,000 on a link throttled to 2/s would have held them 8 minutes). So when
the dispatcher's look ends with parts kept while another link up has free places none of them can
use, and its last claim left due parts behind, those kept there longer than KEPT_WAIT_SECONDS go
back to the queue due KEPT_DELAY_SECONDS later (twice as long with each hand-back in a row, up to
KEPT_DELAY_MAX_SECONDS, so that the claims move on through a long backlog while the busy links still
find their parts), their attempt not counted (`KeptParts`), all but a window's worth for the links
they wait for; the next claim reaches the due parts behind them. The claim-ahead stays as large as
it was (each part claimed is durably `active`, and one a crash catches goes again as a possible
duplicate); with one link up, or all links full, nothing changes, so a campaign on one link claims
each part once. The SMS to a phone still go in order: a later one claimed while an earlier one waits
handed back goes back with it (`gateway.phoneorder`).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.store.records import ClaimedPart
from smsc.base import LinkState, SmscLink
from smsc.pacing import LinkPacer

CLAIM_AHEAD = 2  # windows of parts claimed ahead of the links that are up
MAX_CLAIM = 500  # parts in one claim at most, however wide the windows
# A part kept this long for its full link, while another link has free places, goes back to the queue
# due KEPT_DELAY_SECONDS later: short enough for the SMS behind it to go within a second or two, long
# enough that a link answering in a few dozen milliseconds keeps its parts claimed.
KEPT_WAIT_SECONDS = 0.5
KEPT_DELAY_SECONDS = 1.0
# With each hand-back in a row the wait doubles, up to this: all due again a second later, the parts
# handed back were claimed again before the rest of the backlog (they are older), and the SMS for the
# free link behind 400 on a link throttled to 5/s waited 62 s (27 s so); a longer wait left the busy
# link idle for want of its parts (400 took it 160 s instead of 80).
KEPT_DELAY_MAX_SECONDS = 4.0


class ClaimAhead:
    """The windows of the links that are up, and the claim they call for."""

    def __init__(self, links: Mapping[str, SmscLink], pacers: Mapping[str, LinkPacer]) -> None:
        self.links = links
        self.pacers = pacers

    def free(self) -> int:
        """Free window places on the links that are up."""
        return sum(
            pacer.free() for name, pacer in self.pacers.items() if self.links[name].state == LinkState.ACTIVE
        )

    def up(self) -> int:
        """How many links are up."""
        return sum(1 for name in self.pacers if self.links[name].state == LinkState.ACTIVE)

    def capacity(self) -> int:
        """The windows of the links that are up: how many parts are claimed ahead of them."""
        return sum(
            pacer.window for name, pacer in self.pacers.items() if self.links[name].state == LinkState.ACTIVE
        )

    def room(self, ready: int) -> int:
        """How many parts to claim now, with `ready` already claimed ahead: none while a window's
        worth is, else enough for the free places and CLAIM_AHEAD windows, so that claims come in
        batches."""
        ahead = self.capacity()
        if ahead == 0 or ready >= ahead:
            return 0
        return min(self.free() + CLAIM_AHEAD * ahead - ready, MAX_CLAIM)


class KeptParts:
    """When each part kept for its full link began to wait beside a link with free places, and how
    long those handed back wait."""

    def __init__(self) -> None:
        self._since: dict[int, float] = {}  # part id -> first look that kept it so
        self._rounds = 0  # hand-backs in a row, none more than KEPT_DELAY_MAX_SECONDS apart
        self._last = float("-inf")  # the last hand-back

    def overtaken(
        self, kept: list[ClaimedPart], windows: ClaimAhead, now: float
    ) -> tuple[list[ClaimedPart], list[tuple[ClaimedPart, float]]]:
        """The parts kept (their links full, in their turn's order) while another link up has free
        places none of them can use, split into those that stay claimed and those that go back to
        the queue, with how long they wait there: kept KEPT_WAIT_SECONDS and more, past the first
        window's worth of the full links (which the busy links take next, with no write before)."""
        if windows.up() < 2:
            return kept, []
        since = self._since
        if len(since) > 4 * len(kept) + 256:  # parts sent or gone meanwhile: forgotten
            self._since = since = {p.id: since[p.id] for p in kept if p.id in since}
        for part in kept:
            since.setdefault(part.id, now)
        stay = windows.capacity() - windows.free()  # the full links' windows
        back = [p for p in kept[stay:] if now - since[p.id] >= KEPT_WAIT_SECONDS]
        if not back:
            return kept, []
        self._rounds = 1 if now - self._last > KEPT_DELAY_MAX_SECONDS else self._rounds + 1
        self._last = now
        wait = min(KEPT_DELAY_SECONDS * 2 ** (self._rounds - 1), KEPT_DELAY_MAX_SECONDS)
        for part in back:
            del since[part.id]
        gone = {p.id for p in back}
        return [p for p in kept if p.id not in gone], [(part, wait) for part in back]
