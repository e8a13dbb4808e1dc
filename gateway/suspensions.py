"""Which accounts were suspended since the dispatcher last looked.

A suspension holds the account's waiting SMS in the store (`PolicyRepo.suspend_account`); the parts
the dispatcher has already claimed ahead are in its memory, so it must look for new suspensions
itself, whether made in this process (the automatic one, the panel) or by the CLI in another.
"""

from __future__ import annotations

import time

from gateway.store.policy import PolicyRepo

# How often the dispatcher looks: what may still go after a suspension. A look reads the settings
# generation (`PolicyRepo.suspended_accounts`), a query per loop turn, so not at every answer.
LOOK_SECONDS = 0.05


class SuspensionWatch:
    def __init__(self, policy: PolicyRepo) -> None:
        self.policy = policy
        self._seen: frozenset[tuple[int, float]] = frozenset()  # (account, suspended at) last looked at
        self._next_look = 0.0  # monotonic

    def newly_suspended(self) -> set[int]:
        """Accounts suspended since the last look (at most every `LOOK_SECONDS`; else none). The
        time tells a suspension lifted and imposed again between two looks from the one before."""
        now = time.monotonic()
        if now < self._next_look:
            return set()
        self._next_look = now + LOOK_SECONDS
        suspended = self.policy.suspended_accounts()
        if suspended is self._seen:
            return set()
        new = {account for account, _at in suspended - self._seen}
        self._seen = suspended
        return new
