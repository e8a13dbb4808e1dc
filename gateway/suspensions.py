"""What an admin changed since the dispatcher last looked: suspensions, opt-outs, cancels.

A suspension holds the account's waiting SMS in the store (`PolicyRepo.suspend_account`), an
opt-out and a cancel end them; the parts the dispatcher has already claimed ahead are in its
memory, so it must look for such changes itself, whether made in this process (the automatic
suspension, the panel) or by the CLI in another. Each of them gives the settings generation a new
value in its transaction (`gateway.store.adminstops`), a number added to the shared opt-out list its
`optouts_added` (migration 79), which is all the dispatcher watches (`SettingsCache.changes`): one
primary-key read per look, and the claimed parts are read again only after a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from gateway.claims import CANCELLED_BY_ADMIN, OPTED_OUT, stopped_claimed
from gateway.store.db import ClaimedPart, Store

log = structlog.get_logger(__name__)

# How often the dispatcher looks: what may still go after a change. A look reads the settings
# generation (`SettingsCache`), a query per loop turn, so not at every answer.
LOOK_SECONDS = 0.05


@dataclass(slots=True)
class Stops:
    """Claimed parts not yet sent that an admin's change stops."""

    held: set[int] = field(default_factory=set)  # of an account suspended: held as its waiting ones
    opted_out: list[ClaimedPart] = field(default_factory=list)  # end as the claim ends them
    cancelled: list[ClaimedPart] = field(default_factory=list)  # an admin's cancel asked for them

    def ids(self) -> set[int]:
        return self.held | {p.id for p in self.opted_out} | {p.id for p in self.cancelled}

    def end(self, store: Store, end: Callable[[list[ClaimedPart], str, str], None]) -> None:
        """Inside a store write: what the change stops, stopped; `end` ends claimed parts (the
        dispatcher's, which tells their senders)."""
        if self.held:
            held = store.policy.hold_claimed(sorted(self.held))
            for pid in self.held - held:  # resumed meanwhile: back to the queue, its turn kept
                store.queue.release(pid, delay=None, count=False)
            log.info("mt.suspended_held", parts=len(held))
        if self.opted_out:
            end(self.opted_out, "failed", OPTED_OUT)
            log.info("mt.opted_out", parts=[p.id for p in self.opted_out])
        if self.cancelled:
            end(self.cancelled, "cancelled", CANCELLED_BY_ADMIN)
            log.info("mt.cancelled", parts=[p.id for p in self.cancelled])


class SuspensionWatch:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: frozenset[tuple[int, float]] = frozenset()  # (account, suspended at) last looked at
        self._token: object = None  # the settings cache's, new after each change (an opt-out added too)
        self._next_look = 0.0  # monotonic

    def _changed(self) -> bool:
        """Whether the settings generation changed since the last look (at most every `LOOK_SECONDS`)."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + LOOK_SECONDS
        token = self.store.db.settings.changes()
        if token is self._token:
            return False
        self._token = token
        return True

    def newly_suspended(self) -> set[int]:
        """Accounts suspended since the last look. The time tells a suspension lifted and imposed
        again between two looks from the one before."""
        suspended = self.store.policy.suspended_accounts()
        if suspended is self._seen:
            return set()
        new = {account for account, _at in suspended - self._seen}
        self._seen = suspended
        return new

    def stops(self, claimed: list[ClaimedPart]) -> Stops | None:
        """Which of these claimed parts (not yet handed to a link) a change since the last look stops;
        None when nothing changed."""
        if not self._changed():
            return None
        found = Stops()
        new = self.newly_suspended()
        if not claimed:
            return None
        if new:
            found.held = self.store.policy.claimed_of(new, {p.id for p in claimed})
        rest = [p for p in claimed if p.id not in found.held]
        found.opted_out, found.cancelled = stopped_claimed(self.store, rest)
        return found if found.ids() else None
