"""How many parts the dispatcher claims ahead of the links that are up, counted in their windows.

When a window place frees, the next part is already claimed (durably `active`) and goes out in the
same step, with no claim or other write before it; and claims come in batches of `CLAIM_AHEAD`
windows instead of one per answer. Only links that are up count: with none up nothing is claimed.
The windows are read from the links' pacers at each look, so a throttle or a link going down
changes the next claim at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from smsc.base import LinkState, SmscLink
from smsc.pacing import LinkPacer

CLAIM_AHEAD = 2  # windows of parts claimed ahead of the links that are up
MAX_CLAIM = 500  # parts in one claim at most, however wide the windows


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
