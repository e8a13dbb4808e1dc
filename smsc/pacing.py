"""How fast a link may be fed: one `LinkPacer` per link, owned by the dispatcher.

A driver only says what happened to one submit (`smsc.base.Outcome`); pacing is decided here, once,
for every protocol: the window of outstanding submits, the operator's per-bind `max_per_second`
(`TokenBucket`) and the pause after the SMSC said it is throttled, growing while it keeps saying so
and forgotten after the next success. A throttle also halves the link's rate (to `RATE_FLOOR` at
least) and lets only one submit out at the end of the pause; clean submits win the rate back by
`RECOVERY_PER_SECOND` a second, up to `max_per_second` (RELIABILITY.md F6: the rate drops adaptively),
and so does a quiet link: the rate is won back by the time without a throttle, submits or none.
`backoff` is the one exponential delay the gateway uses, for reconnects, part retries and outbox
retries alike, so that they all grow the same way.
All clocks and sleeps are parameters so that tests drive time by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from smsc.base import Outcome

MAX_THROTTLE_PAUSE = 30.0
# The lowest rate a throttle brings a link to (unless its configured rate is lower still): an SMSC
# that throttles even one submit a second is answered by the growing pause, not by a slower rate.
RATE_FLOOR = 1.0
# Rate won back per second without a throttle, as a share of the rate at the time. A share of the
# current rate rather than of the configured one: a link configured for 1000/s whose SMSC takes 2/s
# would otherwise be back to 100/s a second after each throttle and refused again at once, while
# this finds its way back from 1/s to 100/s in under a minute once the SMSC stops throttling.
RECOVERY_PER_SECOND = 0.10
R = TypeVar("R")


def backoff(attempt: int, base: float, cap: float) -> float:
    """The delay before try `attempt + 1`: `base` after the first failure, doubling up to `cap`."""
    if attempt <= 1:
        return min(base, cap)
    # Past ~60 doublings any base has long reached any sane cap; avoid float overflow.
    return min(base * 2.0 ** min(attempt - 1, 60), cap)


# A session that stayed bound this long (or the longest pause, if shorter) proves the SMSC keeps
# us. Not the longest pause alone: an SMSC that ends sessions after 40 s (an idle limit that does
# not count enquire_link) would otherwise keep the link waiting a minute between sessions.
STABLE_SESSION_SECONDS = 30.0


def reconnect_attempt(previous: int, bound_for: float | None, cap: float) -> int:
    """The link's `backoff` attempt after a session ended; `bound_for` is how long it stayed bound
    (logged in), None when it never got that far.

    Only a session that outlived `STABLE_SESSION_SECONDS` (or the longest pause, `cap`, if that is
    shorter) starts the count afresh. A shorter one proves nothing: an SMSC at its bind limit, or
    holding a suspended account, takes the bind and drops it at once, and resetting on any bind
    would bind it again every reconnect_min_seconds for ever (~86,000 binds a day). Time alone is
    not the proof either: the drivers pass `bound_for` only for a session that held
    (`smsc.outage.session_held`: the time, and an answer to a request of ours), as an SMSC that takes
    each bind and then answers nothing keeps it until the enquire_link times out. A good session
    ended early costs little: the count was 1, so the next pause is only twice the shortest."""
    if bound_for is not None and bound_for >= stable_after(cap):
        return 1
    return previous + 1


def stable_after(cap: float) -> float:
    """How long a session must stay bound to count, besides an answer on it (`smsc.outage.session_held`):
    for the back-off (`reconnect_attempt`) and for the end of an outage (`smsc.outage.Outage`) alike."""
    return min(cap, STABLE_SESSION_SECONDS)


class TokenBucket:
    """A bucket of `burst` tokens refilled at `rate_per_second`; one token per submit.

    The bucket starts full so that a link that was idle may send a short burst at once; sustained
    traffic is held to the rate. A bucket alone lets `burst` + `rate` submits out in the first
    second after a quiet spell (a link capped at 5/s sent 10 within 1.0 s), while operators count
    their contract per second: `per_second` caps the submits of any 1-second window on top of the
    bucket (the times of the last second's submits, so no timer runs unless the cap is reached, and
    a burst still goes at once as long as it fits the second).
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int = 1,
        *,
        per_second: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if per_second is not None and per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.rate = float(rate_per_second)
        self.per_second = per_second
        # When the submits of the last second went, oldest first; at most `per_second` of them.
        self._recent: deque[float] = deque()
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        # Waiters queue on this lock so that tokens go out in arrival order, not to whoever
        # happens to wake first.
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)

    def _second_full(self) -> float:
        """Seconds until the 1-second window has room for one more submit (0 when it has now).
        A submit at `t` goes only while fewer than `per_second` went in (t - 1, t], so that no
        1-second window, wherever it starts, holds more than `per_second`."""
        if self.per_second is None:
            return 0.0
        recent = self._recent
        now = self._clock()
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) < self.per_second:
            return 0.0
        return max(recent[0] + 1.0 - now, 1e-6)

    def delay(self) -> float:
        """Seconds until a token is available (0 when one is available now)."""
        self._refill()
        window = self._second_full()
        if self._tokens >= 1.0:
            return window
        return max((1.0 - self._tokens) / self.rate, window)

    def try_acquire(self) -> bool:
        """Take a token if one is available now, without waiting."""
        self._refill()
        if self._tokens >= 1.0 and self._second_full() == 0.0:
            self._tokens -= 1.0
            if self.per_second is not None:
                self._recent.append(self._clock())
            return True
        return False

    def give_back(self) -> None:
        """Return the token just taken for a submit that did not go (its part expired or was
        settled while it waited): ten expired parts at 1/s cost the next SMS ten seconds."""
        self._refill()
        self._tokens = min(float(self.burst), self._tokens + 1.0)
        if self._recent:
            self._recent.pop()

    def set_rate(self, rate_per_second: float, burst: int, *, full: bool = False) -> None:
        """Change rate and burst from now on; the time gone by is refilled at the old rate first, so
        that a lower rate does not take back tokens already earned. `full` fills the bucket."""
        self._refill()
        self.rate = float(rate_per_second)
        self.burst = burst
        self._tokens = float(burst) if full else min(self._tokens, float(burst))

    @property
    def waiting(self) -> bool:
        """Whether a submit waits for a token: one taken now would jump the queue."""
        return self._lock.locked()

    async def acquire(self, hold: Callable[[], float] | None = None) -> None:
        """Wait until a token is available and take it; `hold` says how much longer no token may be
        taken at all (a throttle pause). It is asked again after every sleep, still in the queue:
        a pause that starts while a submit waits for its token holds that submit too."""
        async with self._lock:
            while True:
                held = hold() if hold is not None else 0.0
                if held <= 0 and self.try_acquire():
                    return
                await self._sleep(max(held, self.delay()))


class LinkPacer:
    """Window, rate and throttle pauses of one link.

    The dispatcher `reserve()`s a place in the window when it assigns a part to the link (so that it
    never claims more than the links can take), awaits `ready()` before the submit, and hands the
    outcome to `release()`. `submit()` does all three for callers that hold no queue.
    """

    def __init__(
        self,
        window: int,
        rate_per_second: float,
        throttle_pause: float,
        *,
        max_pause: float = MAX_THROTTLE_PAUSE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.max_rate = float(rate_per_second)
        self.max_burst = max(1, min(window, int(rate_per_second)))
        # The contract's cap holds for every second, the first after a quiet spell too.
        self.bucket = TokenBucket(
            rate_per_second,
            burst=self.max_burst,
            per_second=max(1, int(rate_per_second)),
            clock=clock,
            sleep=sleep,
        )
        self.throttle_pause = throttle_pause
        self.max_pause = max(max_pause, throttle_pause)
        self._clock = clock
        self._sleep = sleep
        self.in_flight = 0
        # Of those places, the submits waiting in `ready()` for their rate token or a throttle pause:
        # not on the wire, which `smsgw status` told as "window 10/10" of a link at 0.5/s with one out.
        self.pacing = 0
        self.sent = 0
        self.throttles = 0  # consecutive THROTTLED answers that started a pause
        self.paused_until = 0.0
        self._clean_since = clock()  # since when no throttle came: the time the rate grows back over
        self._freed = asyncio.Event()

    @property
    def rate(self) -> float:
        """The rate a submit may go at now. The time since the last throttle wins the rate back
        whether submits went or not: read only after an accepted submit, an idle link stayed
        "slowed from 100/s after throttling" in `smsgw status` for ever, though no throttle had come
        for hours (and its first submit after the quiet went at the slow rate)."""
        self._speed_up(self._clock())
        return self.bucket.rate

    def free(self) -> int:
        return max(self.window - self.in_flight, 0)

    def pause_left(self) -> float:
        return max(self.paused_until - self._clock(), 0.0)

    def reserve(self) -> None:
        """Take a place in the window now; the caller has checked `free()`."""
        self.in_flight += 1

    async def ready(self) -> None:
        """Wait out a throttle pause and the rate limit before one submit goes out."""
        self._speed_up(self._clock())
        self.pacing += 1
        try:
            await self.bucket.acquire(hold=self.pause_left)
        finally:
            self.pacing -= 1

    def try_ready(self) -> bool:
        """`ready()` without waiting: True (and a token taken) when a submit may go out now, with
        no pause running and no earlier submit waiting for a token."""
        if self.pause_left() > 0 or self.bucket.waiting:
            return False
        self._speed_up(self._clock())
        return self.bucket.try_acquire()

    def unready(self) -> None:
        """Undo `ready()`/`try_ready()` for a submit that did not go: its rate token is given back."""
        self.bucket.give_back()

    def release(self, outcome: Outcome | None, *, unsent: bool = False) -> None:
        """Give the place back and learn from the answer; None when nothing was sent. `unsent`: the
        link refused it before writing anything (it was not up): no submit for `status` and the
        metrics (a restart's burst counted ten more than the SMSC got), its rate token given back."""
        self.in_flight -= 1
        if unsent:
            self.bucket.give_back()
        elif outcome is not None:
            self.sent += 1
            self.record(outcome)
        self._freed.set()

    def record(self, outcome: Outcome) -> None:
        if outcome is Outcome.ACCEPTED:
            self.throttles = 0
            self._speed_up(self._clock())
        elif outcome is Outcome.THROTTLED:
            now = self._clock()
            # Answers to submits already in flight arrive during the pause; only a throttle seen
            # after the pause has ended means the SMSC still wants us slower.
            if now >= self.paused_until:
                self.throttles += 1
                self.paused_until = now + backoff(self.throttles, self.throttle_pause, self.max_pause)
                self._slow_down()

    def _slow_down(self) -> None:
        """Halve the rate and let one submit out when the pause ends. The pause alone let a whole
        burst out at the old rate every time it ended, and an SMSC taking 2/s refused most of it:
        40 SMS cost 140 throttled answers."""
        rate = max(self.bucket.rate / 2, min(RATE_FLOOR, self.max_rate))
        self.bucket.set_rate(rate, 1, full=True)
        self._clean_since = self.paused_until

    def _speed_up(self, now: float) -> None:
        """Win back `RECOVERY_PER_SECOND` of the rate for every second since the last throttle (or
        the last gain); the configured burst comes back with the configured rate."""
        if self.bucket.rate >= self.max_rate or now <= self._clean_since:
            return
        clean = min(now - self._clean_since, 3600.0)  # an idle day must not overflow the power
        rate = min(self.bucket.rate * (1 + RECOVERY_PER_SECOND) ** clean, self.max_rate)
        self._clean_since = now
        self.bucket.set_rate(rate, self.max_burst if rate >= self.max_rate else 1)

    async def submit(self, send: Callable[[], Awaitable[R]], outcome: Callable[[R], Outcome]) -> R:
        """Wait for room in the window, pace, send, record: for callers that have no dispatcher."""
        while self.in_flight >= self.window:
            self._freed.clear()
            await self._freed.wait()
        self.reserve()
        sent: Outcome | None = None
        try:
            await self.ready()
            result = await send()
            sent = outcome(result)
        finally:
            self.release(sent)
        return result
