"""The pairs (login, client) that logged in lately, which the guard spares from the login's lock
and the overall rate (acl.lockout explains why).

Kept apart from the counters because it is a table of its own with its own bounds and its own
life: it outlives a restart (the daemon writes a pair's success through the guard's `keep` and
hands the pairs back to `load`), while the counters are forgotten by one.
"""

from __future__ import annotations

from collections import OrderedDict

# A known-good pair's success is written again after this long: its row's age then says when it
# last succeeded within a day, and a busy pair costs one write a day.
KEEP_EVERY_SECONDS = 86400.0


class KnownGood:
    """login -> {client -> (last success, last handed to `keep`)}, both least recent first.

    Bounded per login and in logins, so that someone with one valid login, logging in from many
    addresses, can only push out their own entries.
    """

    def __init__(self, seconds: float, per_login: int, max_logins: int) -> None:
        self.seconds = seconds
        self.per_login = per_login
        self.max_logins = max_logins
        self._good: OrderedDict[str, dict[str, tuple[float, float]]] = OrderedDict()

    def __contains__(self, who: str) -> bool:
        return who in self._good

    def __len__(self) -> int:
        """How many pairs are held, over all logins."""
        return sum(len(clients) for clients in self._good.values())

    def trusted(self, address: str, who: str, now: float) -> bool:
        seen = self._good.get(who, {}).get(address)
        return seen is not None and now - seen[0] < self.seconds

    def remember(self, address: str, who: str, now: float, written: float | None = None) -> bool:
        """Note a success; True when it is to be written down: the pair's first, or the first a
        day after it was last written (so a mailbox polled every minute costs one write a day)."""
        clients = self._good.pop(who, None) or {}
        before = clients.pop(address, None)
        due = False
        if written is not None:
            pass  # read back from the database: written already
        elif before is None or now - before[1] >= KEEP_EVERY_SECONDS:
            due, written = True, now
        else:
            written = before[1]
        clients[address] = (now, written)
        while len(clients) > self.per_login:
            del clients[next(iter(clients))]
        self._good[who] = clients
        while len(self._good) > self.max_logins:
            self._good.popitem(last=False)
        return due
