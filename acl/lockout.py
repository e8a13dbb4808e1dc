"""Counting failed logins so that guessing stays slow without locking out an office behind one NAT.

Failures are counted in four places at once: per (client address, login) with a low cap, so a
person who mistypes is locked alone; per address with a higher cap, so one address cannot try
many logins; per login across all addresses, so rotating addresses cannot guess one login; and
overall, as a rate. A whole office shares one public address, so the address's cap must leave
room for one colleague's typos without stopping the others.

The login's count and the overall rate can be driven by anyone: whoever knows an address can lock
that login everywhere, and a few addresses guessing at random fill the overall rate for every user
of every company. Both therefore spare a client from which the login has lately succeeded (a
"known good" pair: the owner's office, home or phone). The address's lock spares it too: an
office's colleagues are many logins at one address, and seven of them retrying a stale password
three times each reached its cap and locked out everyone there, whoever had logged in from it
minutes before. A known-good pair is held by its own cap alone, which only failures of that login
from that very address can reach, so someone sharing it (a colleague behind the same NAT) gets no
more guesses at it than a mistyper before being locked there. Its failures still count towards the
address's and the login's caps, which go on holding every client not known good.

The overall rate is there to bound the scrypt work and the guesses spread thinly over many logins;
refusing everybody is not needed for that. Past the rate, an address with failures in the window
is told to come back later (454, no lock: whoever guesses from it has had their answers), and a
fresh address waits its turn in a lane that admits one check per `overall_window / overall_max`,
or gets the 454 too when its turn is more than `overall_max_wait_seconds` away. So the checks of
clients not known good stay below twice the rate however many fresh addresses a flood brings, and
a user at a fresh address typically waits a moment instead of being refused. The known-good pairs
outlive a restart (unlike the counters): held in memory only, they were forgotten by it, and
anyone who knew a login could then lock its owner out at every address, their office included.
A pair's success is handed to `keep` (the daemon writes it to the database) the first time and
then at most once a day, and the daemon gives the pairs written in the last 30 days to `load` at
start; so after a restart a pair is trusted for 29 to 30 days from its last success. Failures are
never written (below).

A guess is counted when it starts, not when its answer is known: the slow password check runs
off the event loop, and counting only finished failures let parallel sessions get far more
answers than the limit before the first lockout. Every attempt therefore reserves a slot in each
counter it touches; while the failures plus the attempts in flight reach a cap, a new attempt is
not checked: it waits (`begin_waiting`) for those in flight to be settled, and is then refused
as locked if they failed, or checked if they did not. An attempt in flight is not a failure: a
connection pool, or an office's PCs behind one NAT, logging in at the same moment with the right
password were told they had failed too often. A reply to a locked login is given before its
password is looked at, so it cannot depend on whether the password was right. The counters are
kept in memory: a restart forgets them, which costs an attacker a restart they cannot cause from
outside, while writing every failure to the database would hand them a way to load the disk.
`smsgw auth unlock` runs in another process, so it leaves a row in the database that the guard
reads when it is about to refuse someone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from acl.attempts import REFUSED, Attempt, Lockout, Refused, UnlockRow
from acl.counters import Counters, expire
from acl.knowngood import KnownGood
from acl.logins import Key, client_key, login_key, shown_login

log = structlog.get_logger(__name__)


class AuthGuard:
    """Failed-login counters per (address, login), per address and per login with doubling
    lockouts, an overall rate cap, and the pairs that logged in lately.

    The table of counters is bounded without letting anyone push a lock out of it (acl.counters).
    Attempts in flight are counted apart, and only while in flight.

    The known-good table is bounded per login and in logins (acl.knowngood).
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
        overall_max_wait_seconds: float = 10,
        busy_wait_seconds: float = 10,
        max_keys: int = 20_000,
        known_good_seconds: float = 30 * 86400,
        known_good_per_login: int = 10,
        max_known_good_logins: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        unlocks: Callable[[int], Iterable[UnlockRow]] | None = None,
        keep: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.overall_max = overall_max_failures
        self.overall_window = overall_window_seconds
        self.overall_max_wait = overall_max_wait_seconds
        self.busy_wait = busy_wait_seconds
        self.clock = clock
        self.wall = wall
        self.unlocks = unlocks
        self.keep = keep  # (login key, client key, wall time): a known-good pair to write down
        self._unlock_seen = 0
        self._keys = Counters(
            {"pair": max_failures, "address": address_max_failures, "login": login_max_failures},
            window_seconds,
            lockout=lockout_seconds,
            max_lockout=max_lockout_seconds,
            forget_after=forget_after_seconds,
            max_keys=max_keys,
        )
        self._pending: dict[Key, int] = {}  # attempts in flight; a key leaves when its last settles
        self._overall: deque[float] = deque()
        self._overall_pending = 0
        self._lane_next = 0.0  # when the lane for fresh addresses admits its next check
        self._settled: list[asyncio.Future[None]] = []  # `begin_waiting` calls told of the next settle
        self._good = KnownGood(known_good_seconds, known_good_per_login, max_known_good_logins)

    @classmethod
    def from_config(
        cls,
        smtp: Any,
        unlocks: Callable[[int], Iterable[UnlockRow]] | None = None,
        keep: Callable[[str, str, float], None] | None = None,
    ) -> AuthGuard:
        return cls(
            smtp.auth_max_failures,
            smtp.auth_failure_window_seconds,
            address_max_failures=smtp.auth_max_failures_per_address,
            login_max_failures=smtp.auth_max_failures_per_login,
            overall_max_failures=smtp.auth_max_failures_overall,
            unlocks=unlocks,
            keep=keep,
        )

    def load(self, pairs: Iterable[tuple[str, str, float]]) -> int:
        """Take the known-good pairs written before a restart: (login key, client key, wall time of
        the success written), least recent first. Returns how many are still known good."""
        now, wall = self.clock(), self.wall()
        for who, address, at in pairs:
            age = max(0.0, wall - at)
            if age < self.known_good_seconds:
                self._good.remember(address, who, now - age, written=now - age)
        return len(self._good)

    @property
    def known_good_seconds(self) -> float:
        return self._good.seconds

    @property
    def known_good_per_login(self) -> int:
        return self._good.per_login

    @property
    def max_failures(self) -> int:
        return self._keys.caps["pair"]

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
        loop cannot all pass the check before any of them is counted. A known-good pair skips the
        login's and the address's locks and the overall cap (see the module's docstring), never
        the pair's.
        """
        address, who = client_key(ip), login_key(login)
        keys: tuple[Key, Key, Key] = (("pair", address, who), ("address", address, ""), ("login", "", who))
        now = self.clock()
        trusted = self._good.trusted(address, who, now)
        checked = keys[:1] if trusted else keys
        blocked = self._first_blocked(checked)
        if blocked is not None and self._read_unlocks():
            blocked = self._first_blocked(checked)
        if blocked is not None:
            return REFUSED[blocked[0]]
        if self._first_full(checked) is not None:
            return Refused.BUSY
        delay = 0.0
        if not trusted:
            expire(self._overall, now, self.overall_window)
            if len(self._overall) + self._overall_pending >= self.overall_max:
                turn = self._lane_turn(address, now)
                if turn is None:
                    return Refused.OVERALL
                delay = turn
            self._overall_pending += 1
        for key in keys:
            self._pending[key] = self._pending.get(key, 0) + 1
        return Attempt(keys, overall=not trusted, delay=delay)

    async def begin_waiting(self, ip: str | None, login: str) -> Attempt | Refused:
        """`begin`, but an attempt that finds the slots taken by checks in flight waits for them to
        be settled, up to `busy_wait` seconds, and then gets what `begin` says (BUSY past the wait).

        Their outcome decides: failures lock (and this attempt is refused unchecked), successes
        leave room. So parallel right passwords all get in, and parallel guesses still get no more
        checks than the caps allow.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_wait
        while True:
            result = self.begin(ip, login)
            left = deadline - loop.time()
            if result is not Refused.BUSY or left <= 0:
                return result
            settled = loop.create_future()
            self._settled.append(settled)
            try:
                await asyncio.wait_for(settled, left)
            except TimeoutError:
                pass
            finally:
                if settled in self._settled:
                    self._settled.remove(settled)

    def cancel(self, attempt: Attempt) -> None:
        """Give the slot back: the check failed on our side (database), or never started."""
        self._wake()
        if attempt.overall:
            self._overall_pending -= 1
        for key in attempt.keys:
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)

    def settle(self, attempt: Attempt, ok: bool, *, known: bool = False) -> Lockout | None:
        """Record the outcome; a failure may start a lockout of the pair, the address, the login.

        A success clears the failures of the login (only its owner can do that) but not the
        address's: an attacker with an account of their own must not be able to reset the count
        between guesses. It also makes the pair known good, and it creates no counter, so that
        logging in cannot push anyone's lock out of the table. `known` says the login names a
        user, the only case in which `locks()` may show it as typed.
        """
        self.cancel(attempt)
        now = self.clock()
        pair, _address, who = attempt.keys
        if ok:
            for key in (pair, who):
                self._keys.succeeded(key)
            if self._good.remember(pair[1], pair[2], now) and self.keep is not None:
                self.keep(pair[2], pair[1], self.wall())
            return None
        self._overall.append(now)
        seconds = [self._keys.fail(key, now, known, self.wall) for key in attempt.keys]
        if not any(seconds):
            return None
        return Lockout(max(seconds), pair=seconds[0] > 0, address=seconds[1] > 0, login=seconds[2] > 0)

    def unlock(self, target: str, requested_at: float | None = None) -> int:
        """Lift the locks and failures of an address, a login or (`*`) everyone; returns counters reset.

        A counter locked after `requested_at` (wall time) keeps its lock: the request was about an
        earlier one, and a new round of guessing must not be waved through by it.
        """
        when = self.wall() if requested_at is None else requested_at
        return self._keys.unlock(target, when, self.clock())

    def locks(self, limit: int = 100) -> list[dict[str, Any]]:
        """The counters locked now, longest first: for the status file and `smsgw auth list`.

        A login that names no user is masked: it may well be a password typed as the user name.
        """
        return self._keys.locks(self.clock(), limit)

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
            log.info("auth.unlocked", target=self._shown_target(target), counters=n)
        return bool(rows)

    def _shown_target(self, target: str) -> str:
        """An unlock request's target for the log: a login only as typed when it names a user."""
        if "@" not in target:
            return target  # `*` or an address
        known = target in self._good or self._keys.names_user(target)
        return shown_login(target, known)

    def _lane_turn(self, address: str, now: float) -> float | None:
        """The wait before a check past the overall rate, or None when it is refused.

        An address that failed within the window is refused: whoever is guessing from it has had
        their answers, while its other users can retry after the flood. A fresh address takes the
        next slot of a lane that admits one check per `overall_window / overall_max`, unless that
        slot is further away than `overall_max_wait`.
        """
        if self._keys.failures(("address", address, ""), now):
            return None
        turn = max(now, self._lane_next)
        if turn - now > self.overall_max_wait:
            return None
        self._lane_next = turn + self.overall_window / self.overall_max
        return turn - now

    def _locked_for(self, key: Key) -> float:
        return self._keys.locked_for(key, self.clock())

    def _wake(self) -> None:
        """Tell the attempts waiting in `begin_waiting` that a slot was settled. They run after the
        caller (settle) has counted its failure, so they see its outcome."""
        waiting, self._settled = self._settled, []
        for settled in waiting:
            if not settled.done():
                settled.set_result(None)

    def _first_blocked(self, keys: tuple[Key, ...]) -> Key | None:
        """The first key locked, or with as many failures as its cap."""
        now = self.clock()
        for key in keys:
            if self._keys.locked_for(key, now) > 0:
                return key
            if self._keys.failures(key, now) >= self._keys.caps[key[0]]:
                return key
        return None

    def _first_full(self, keys: tuple[Key, ...]) -> Key | None:
        """The first key whose failures and attempts in flight together fill its cap."""
        now = self.clock()
        for key in keys:
            if self._keys.failures(key, now) + self._pending.get(key, 0) >= self._keys.caps[key[0]]:
                return key
        return None
