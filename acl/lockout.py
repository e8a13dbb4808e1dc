"""Counting failed logins per login, per client address and overall, so that guessing stays slow.

A guess is counted when it starts, not when its answer is known: the slow password check runs
off the event loop, and counting only finished failures let parallel sessions get far more
answers than the limit before the first lockout. Every attempt therefore reserves a slot in each
counter it touches (login, address, overall); while the failures plus the attempts in flight
reach a limit, a new attempt is refused before its password is looked at, so the reply to a
locked login cannot depend on whether the password was right. The counters are kept in memory:
a restart forgets them, which costs an attacker a restart they cannot cause from outside, while
writing every failure to the database would hand them a way to load the disk.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


def client_key(ip: str | None) -> str:
    """The unit a client is counted by: its IPv4 address, or its /64 (one host usually holds a whole /64)."""
    if not ip:
        return "?"
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def login_key(login: str) -> str:
    """Logins are email addresses, compared without case: `Anna@` and `anna@` are one target."""
    return "login:" + login.strip().casefold()


class Refused(Enum):
    """Why an attempt was not even checked; the reply is the same for all, the log says which."""

    ADDRESS = "address locked"
    LOGIN = "login locked"
    OVERALL = "too many failures overall"


@dataclass(slots=True)
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0
    strikes: int = 0
    locked_until: float = 0.0
    last_lockout: float = 0.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved guess; `settle` or `cancel` it exactly once."""

    keys: tuple[str, str]


@dataclass(frozen=True, slots=True)
class Lockout:
    """What a failure started: the counters it locked and for how long."""

    seconds: float
    address: bool
    login: bool


class AuthGuard:
    """Failed-login counters per login and per address with doubling lockouts, and an overall rate cap.

    The table is bounded (the least recently failing keys are forgotten first) so that a flood of
    addresses or made-up logins cannot grow memory without limit; with the overall cap, a key
    locked within the last hour cannot be pushed out by newer ones unless the table is smaller
    than the failures an hour allows.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        *,
        lockout_seconds: float = 300,
        max_lockout_seconds: float = 3600,
        forget_after_seconds: float = 86400,
        overall_max_failures: int = 60,
        overall_window_seconds: float = 60,
        max_keys: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.lockout = lockout_seconds
        self.max_lockout = max_lockout_seconds
        self.forget_after = forget_after_seconds
        self.overall_max = overall_max_failures
        self.overall_window = overall_window_seconds
        self.max_keys = max_keys
        self.clock = clock
        self._keys: OrderedDict[str, _Counter] = OrderedDict()
        self._overall: deque[float] = deque()
        self._overall_pending = 0

    def address_locked_for(self, ip: str | None) -> float:
        """Seconds this client address must still wait; 0 when it may try."""
        return self._locked_for(client_key(ip))

    def login_locked_for(self, login: str) -> float:
        """Seconds this login must still wait; 0 when it may be tried."""
        return self._locked_for(login_key(login))

    def begin(self, ip: str | None, login: str) -> Attempt | Refused:
        """Reserve one guess against the address, the login and the overall cap, or say which refuses it.

        Nothing awaits between the checks and the reservation, so parallel sessions on the event
        loop cannot all pass the check before any of them is counted.
        """
        now = self.clock()
        address, who = client_key(ip), login_key(login)
        self._expire(self._overall, now, self.overall_window)
        if self._blocked(address, now):
            return Refused.ADDRESS
        if self._blocked(who, now):
            return Refused.LOGIN
        if len(self._overall) + self._overall_pending >= self.overall_max:
            return Refused.OVERALL
        for key in (address, who):
            self._counter(key).pending += 1
        self._overall_pending += 1
        return Attempt((address, who))

    def cancel(self, attempt: Attempt) -> None:
        """Give the slot back: the check failed on our side (database), not on the user's."""
        self._overall_pending -= 1
        for key in attempt.keys:
            counter = self._keys.get(key)
            if counter is not None and counter.pending:
                counter.pending -= 1

    def settle(self, attempt: Attempt, ok: bool) -> Lockout | None:
        """Record the outcome; a failure may start a lockout of the address, the login or both.

        A success clears the login's failures (only its owner can do that) but not the address's:
        an attacker with an account of their own must not be able to reset the count between guesses.
        """
        self.cancel(attempt)
        now = self.clock()
        address, who = attempt.keys
        if ok:
            counter = self._keys.get(who)
            if counter is not None:
                counter.failures.clear()
            return None
        self._overall.append(now)
        longest = 0.0
        locked: dict[str, bool] = {}
        for key in (address, who):
            seconds = self._fail(key, now)
            locked[key] = seconds > 0
            longest = max(longest, seconds)
        if not longest:
            return None
        return Lockout(longest, address=locked[address], login=locked[who])

    # ---- internals ----------------------------------------------------------------------------

    def _locked_for(self, key: str) -> float:
        counter = self._keys.get(key)
        return 0.0 if counter is None else max(0.0, counter.locked_until - self.clock())

    def _blocked(self, key: str, now: float) -> bool:
        counter = self._keys.get(key)
        if counter is None:
            return False
        if counter.locked_until > now:
            return True
        self._expire(counter.failures, now, self.window)
        return len(counter.failures) + counter.pending >= self.max_failures

    def _counter(self, key: str) -> _Counter:
        counter = self._keys.pop(key, None) or _Counter()
        self._keys[key] = counter  # most recent last: eviction takes the oldest
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return counter

    def _fail(self, key: str, now: float) -> float:
        counter = self._counter(key)
        self._expire(counter.failures, now, self.window)
        counter.failures.append(now)
        if len(counter.failures) < self.max_failures or counter.locked_until > now:
            return 0.0
        counter.failures.clear()
        if now - counter.last_lockout > self.forget_after:
            counter.strikes = 0
        counter.strikes += 1
        counter.last_lockout = now
        duration = min(self.lockout * 2 ** (counter.strikes - 1), self.max_lockout)
        counter.locked_until = now + duration
        return duration

    @staticmethod
    def _expire(times: deque[float], now: float, window: float) -> None:
        while times and times[0] <= now - window:
            times.popleft()
