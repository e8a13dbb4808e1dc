"""Counting failed logins so that guessing stays slow without locking out an office behind one NAT.

Failures are counted in four places at once: per (client address, login) with a low cap, so a
person who mistypes is locked alone; per address with a higher cap, so one address cannot try
many logins; per login across all addresses, so rotating addresses cannot guess one login; and
overall, as a rate. A whole office shares one public address, so the address's cap must leave
room for one colleague's typos without stopping the others.

A guess is counted when it starts, not when its answer is known: the slow password check runs
off the event loop, and counting only finished failures let parallel sessions get far more
answers than the limit before the first lockout. Every attempt therefore reserves a slot in each
counter it touches; while the failures plus the attempts in flight reach a cap, a new attempt is
refused before its password is looked at, so the reply to a locked login cannot depend on whether
the password was right. The counters are kept in memory: a restart forgets them, which costs an
attacker a restart they cannot cause from outside, while writing every failure to the database
would hand them a way to load the disk. `smsgw auth unlock` runs in another process, so it
leaves a row in the database that the guard reads when it is about to refuse someone.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import structlog

log = structlog.get_logger(__name__)

ALL = "*"  # an unlock of every counter

# (kind, address, login): kind "pair" has both, "address" only the address, "login" only the login.
Key = tuple[str, str, str]
# What the store hands back for unlock requests newer than an id: (id, target, wall time it was made).
UnlockRow = tuple[int, str, float]


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
    return login.strip().casefold()


def shown_login(login: str) -> str:
    """A login fit for logs and the status file; people sometimes type their password as the user name."""
    if "@" in login and len(login) <= 254 and login.isprintable() and " " not in login:
        return login
    return "[not an address]"


class Refused(Enum):
    """Why an attempt was not even checked; the reply is the same for all, the log says which."""

    PAIR = "login locked at this address"
    ADDRESS = "address locked"
    LOGIN = "login locked"
    OVERALL = "too many failures overall"


@dataclass(slots=True)
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0
    strikes: int = 0
    locked_until: float = 0.0
    locked_at_wall: float = 0.0  # compared with the time of an unlock request from another process
    last_lockout: float = 0.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved guess; `settle` or `cancel` it exactly once."""

    keys: tuple[Key, Key, Key]


@dataclass(frozen=True, slots=True)
class Lockout:
    """What a failure started: the counters it locked and for how long."""

    seconds: float
    pair: bool
    address: bool
    login: bool


_REFUSED = {"pair": Refused.PAIR, "address": Refused.ADDRESS, "login": Refused.LOGIN}


class AuthGuard:
    """Failed-login counters per (address, login), per address and per login with doubling
    lockouts, and an overall rate cap.

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
        address_max_failures: int = 20,
        login_max_failures: int = 10,
        lockout_seconds: float = 300,
        max_lockout_seconds: float = 3600,
        forget_after_seconds: float = 86400,
        overall_max_failures: int = 60,
        overall_window_seconds: float = 60,
        max_keys: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        unlocks: Callable[[int], Iterable[UnlockRow]] | None = None,
    ) -> None:
        self.caps = {"pair": max_failures, "address": address_max_failures, "login": login_max_failures}
        self.window = window_seconds
        self.lockout = lockout_seconds
        self.max_lockout = max_lockout_seconds
        self.forget_after = forget_after_seconds
        self.overall_max = overall_max_failures
        self.overall_window = overall_window_seconds
        self.max_keys = max_keys
        self.clock = clock
        self.wall = wall
        self.unlocks = unlocks
        self._unlock_seen = 0
        self._keys: OrderedDict[Key, _Counter] = OrderedDict()
        self._overall: deque[float] = deque()
        self._overall_pending = 0

    @classmethod
    def from_config(cls, smtp: Any, unlocks: Callable[[int], Iterable[UnlockRow]] | None = None) -> AuthGuard:
        return cls(
            smtp.auth_max_failures,
            smtp.auth_failure_window_seconds,
            address_max_failures=smtp.auth_max_failures_per_address,
            login_max_failures=smtp.auth_max_failures_per_login,
            overall_max_failures=smtp.auth_max_failures_overall,
            unlocks=unlocks,
        )

    @property
    def max_failures(self) -> int:
        return self.caps["pair"]

    def address_locked_for(self, ip: str | None) -> float:
        """Seconds this client address must still wait; 0 when it may try."""
        key: Key = ("address", client_key(ip), "")
        if self._locked_for(key) > 0:
            self._read_unlocks()
        return self._locked_for(key)

    def login_locked_for(self, login: str) -> float:
        """Seconds this login must still wait (from every address); 0 when it may be tried."""
        return self._locked_for(("login", "", login_key(login)))

    def pair_locked_for(self, ip: str | None, login: str) -> float:
        """Seconds this login must still wait at this address; 0 when it may be tried there."""
        return self._locked_for(("pair", client_key(ip), login_key(login)))

    def begin(self, ip: str | None, login: str) -> Attempt | Refused:
        """Reserve one guess against every counter and the overall cap, or say which refuses it.

        Nothing awaits between the checks and the reservation, so parallel sessions on the event
        loop cannot all pass the check before any of them is counted.
        """
        address, who = client_key(ip), login_key(login)
        keys: tuple[Key, Key, Key] = (("pair", address, who), ("address", address, ""), ("login", "", who))
        blocked = self._first_blocked(keys)
        if blocked is not None and self._read_unlocks():
            blocked = self._first_blocked(keys)
        if blocked is not None:
            return _REFUSED[blocked[0]]
        self._expire(self._overall, self.clock(), self.overall_window)
        if len(self._overall) + self._overall_pending >= self.overall_max:
            return Refused.OVERALL
        for key in keys:
            self._counter(key).pending += 1
        self._overall_pending += 1
        return Attempt(keys)

    def cancel(self, attempt: Attempt) -> None:
        """Give the slot back: the check failed on our side (database), not on the user's."""
        self._overall_pending -= 1
        for key in attempt.keys:
            counter = self._keys.get(key)
            if counter is not None and counter.pending:
                counter.pending -= 1

    def settle(self, attempt: Attempt, ok: bool) -> Lockout | None:
        """Record the outcome; a failure may start a lockout of the pair, the address, the login.

        A success clears the failures of the login (only its owner can do that) but not the
        address's: an attacker with an account of their own must not be able to reset the count
        between guesses.
        """
        self.cancel(attempt)
        now = self.clock()
        pair, _address, who = attempt.keys
        if ok:
            for key in (pair, who):
                counter = self._keys.get(key)
                if counter is not None:
                    counter.failures.clear()
            return None
        self._overall.append(now)
        seconds = [self._fail(key, now) for key in attempt.keys]
        if not any(seconds):
            return None
        return Lockout(max(seconds), pair=seconds[0] > 0, address=seconds[1] > 0, login=seconds[2] > 0)

    def unlock(self, target: str, requested_at: float | None = None) -> int:
        """Lift the locks and failures of an address, a login or (`*`) everyone; returns counters reset.

        A counter locked after `requested_at` (wall time) keeps its lock: the request was about an
        earlier one, and a new round of guessing must not be waved through by it.
        """
        when = self.wall() if requested_at is None else requested_at
        now = self.clock()
        matched = 0
        for key, counter in self._keys.items():
            if not _matches(key, target):
                continue
            if counter.locked_until > now and counter.locked_at_wall > when:
                continue
            counter.failures.clear()
            counter.locked_until = 0.0
            counter.strikes = 0
            matched += 1
        return matched

    def locks(self, limit: int = 100) -> list[dict[str, Any]]:
        """The counters locked now, longest first: for the status file and `smsgw auth list`."""
        now = self.clock()
        out = [
            {
                "kind": kind,
                "address": address or None,
                "login": shown_login(login) if login else None,
                "seconds_left": round(counter.locked_until - now),
                "strikes": counter.strikes,
            }
            for (kind, address, login), counter in self._keys.items()
            if counter.locked_until > now
        ]
        out.sort(key=lambda lock: -lock["seconds_left"])
        return out[:limit]

    # ---- internals ----------------------------------------------------------------------------

    def _read_unlocks(self) -> bool:
        """Apply unlock requests the CLI left since the last look; True when there were any.

        Only called when someone is about to be refused, so the read costs nothing in normal use.
        """
        if self.unlocks is None:
            return False
        try:
            rows = list(self.unlocks(self._unlock_seen))
        except Exception as exc:  # a database fault must not open the door nor break the session
            log.warning("auth.unlock_read_failed", error=repr(exc))
            return False
        for row_id, target, requested_at in rows:
            self._unlock_seen = max(self._unlock_seen, row_id)
            n = self.unlock(target, requested_at)
            log.info("auth.unlocked", target=shown_target(target), counters=n)
        return bool(rows)

    def _locked_for(self, key: Key) -> float:
        counter = self._keys.get(key)
        return 0.0 if counter is None else max(0.0, counter.locked_until - self.clock())

    def _first_blocked(self, keys: tuple[Key, ...]) -> Key | None:
        now = self.clock()
        for key in keys:
            counter = self._keys.get(key)
            if counter is None:
                continue
            if counter.locked_until > now:
                return key
            self._expire(counter.failures, now, self.window)
            if len(counter.failures) + counter.pending >= self.caps[key[0]]:
                return key
        return None

    def _counter(self, key: Key) -> _Counter:
        counter = self._keys.pop(key, None) or _Counter()
        self._keys[key] = counter  # most recent last: eviction takes the oldest
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return counter

    def _fail(self, key: Key, now: float) -> float:
        counter = self._counter(key)
        self._expire(counter.failures, now, self.window)
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
        counter.locked_at_wall = self.wall()
        return duration

    @staticmethod
    def _expire(times: deque[float], now: float, window: float) -> None:
        while times and times[0] <= now - window:
            times.popleft()


def unlock_target(text: str) -> str:
    """What `smsgw auth unlock` stores: `*`, a login (casefolded) or an address's counting unit.

    Raises ValueError for anything else, so a typo is said at once instead of unlocking nothing.
    """
    text = text.strip()
    if text == ALL:
        return ALL
    if "@" in text:
        return login_key(text)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an IP address nor a login (e.g. 192.0.2.7 or anna@example.com)"
        ) from None
    return client_key(text)  # an IPv6 address stands for its /64, as it is counted


def shown_target(target: str) -> str:
    return shown_login(target) if "@" in target else target


def _matches(key: Key, target: str) -> bool:
    if target == ALL:
        return True
    _kind, address, login = key
    if "@" in target:
        return login == target
    return address == target
