"""The failed-login counters, one per key, and the doubling lockouts they start.

The table is bounded (the least recently failing keys are forgotten first) so that a flood of
addresses or made-up logins cannot grow memory without limit. Only a failure makes or refreshes a
counter, and a counter still locked is never forgotten: otherwise anyone able to make new keys (a
login of their own used from many IPv6 /64s) could push a victim's lock and its doubling out of the
table.

Nothing here reads a clock: the guard owns its clocks and passes the time in, so that whoever
replaces the guard's clock moves every counter with it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acl.logins import Key, matches, shown_login


@dataclass(slots=True)
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    strikes: int = 0
    locked_until: float = 0.0
    locked_at_wall: float = 0.0  # compared with the time of an unlock request from another process
    last_lockout: float = 0.0
    known: bool = False  # the login names a user: the lock list may show it as typed


def expire(times: deque[float], now: float, window: float) -> None:
    while times and times[0] <= now - window:
        times.popleft()


class Counters(OrderedDict[Key, _Counter]):
    """Failure counters by key, least recently failing first, with the cap of each kind of key
    and the lockout each cap starts (doubling at each repeat, up to `max_lockout`)."""

    def __init__(
        self,
        caps: dict[str, int],
        window: float,
        *,
        lockout: float,
        max_lockout: float,
        forget_after: float,
        max_keys: int,
    ) -> None:
        super().__init__()
        self.caps = caps
        self.window = window
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.forget_after = forget_after
        self.max_keys = max_keys

    def locked_for(self, key: Key, now: float) -> float:
        counter = self.get(key)
        return 0.0 if counter is None else max(0.0, counter.locked_until - now)

    def failures(self, key: Key, now: float) -> int:
        """The key's failures within the window."""
        counter = self.get(key)
        if counter is None:
            return 0
        expire(counter.failures, now, self.window)
        return len(counter.failures)

    def fail(self, key: Key, now: float, known: bool, wall: Callable[[], float]) -> float:
        """Count a failure; returns the lockout it started (0 when none).

        `wall` is read only when a lock starts: an unlock request made before that moment was
        about an earlier lock, and must not lift this one.
        """
        counter = self._counter(key, now)
        counter.known = counter.known or (known and bool(key[2]))
        expire(counter.failures, now, self.window)
        counter.failures.append(now)
        if len(counter.failures) < self.caps[key[0]] or counter.locked_until > now:
            return 0.0
        counter.failures.clear()
        if now - counter.last_lockout > self.forget_after:
            counter.strikes = 0
        counter.strikes += 1
        counter.last_lockout = now
        duration = min(self.lockout * 2 ** (counter.strikes - 1), self.max_lockout)
        counter.locked_until = now + duration
        counter.locked_at_wall = wall()
        return duration

    def succeeded(self, key: Key) -> None:
        """The key's owner logged in: forget its failures and let its login be shown as typed.

        Makes no counter, so that logging in cannot push anyone's lock out of the table.
        """
        counter = self.get(key)
        if counter is not None:
            counter.failures.clear()
            counter.known = True

    def unlock(self, target: str, requested_at: float, now: float) -> int:
        """Reset the counters `target` names, except those locked after `requested_at`; returns how many."""
        matched = 0
        for key, counter in self.items():
            if not matches(key, target):
                continue
            if counter.locked_until > now and counter.locked_at_wall > requested_at:
                continue
            counter.failures.clear()
            counter.locked_until = 0.0
            counter.strikes = 0
            matched += 1
        return matched

    def locks(self, now: float, limit: int) -> list[dict[str, Any]]:
        """The counters locked at `now`, longest first, with a login that names no user masked."""
        out = [
            {
                "kind": kind,
                "address": address or None,
                "login": shown_login(login, counter.known) if login else None,
                "seconds_left": round(counter.locked_until - now),
                "strikes": counter.strikes,
                # Wall time: `smsgw auth list` tells an unlock request still pending (made after it).
                "locked_at": round(counter.locked_at_wall, 3),
            }
            for (kind, address, login), counter in self.items()
            if counter.locked_until > now
        ]
        out.sort(key=lambda lock: -lock["seconds_left"])
        return out[:limit]

    def names_user(self, login: str) -> bool:
        """Whether a counter of this login saw it name a user."""
        return any(counter.known for key, counter in self.items() if key[2] == login)

    def _counter(self, key: Key, now: float) -> _Counter:
        counter = self.pop(key, None) or _Counter()
        self[key] = counter  # most recent last: eviction takes the oldest
        if len(self) > self.max_keys:
            self._make_room(key, now)
        return counter

    def _make_room(self, keep: Key, now: float) -> None:
        """Forget the least recently failing counters that hold no lock.

        A locked one goes to the back instead (it is looked at again once newer keys have gone):
        forgetting it would lift the lock. With every counter locked the table outgrows its bound
        for a while; locks need failures, and failures need password checks, which the caps keep
        few.
        """
        for _ in range(len(self)):
            if len(self) <= self.max_keys:
                return
            key, counter = next(iter(self.items()))
            if key == keep or counter.locked_until > now:
                self.move_to_end(key)
            else:
                del self[key]
