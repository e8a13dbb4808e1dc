"""Pacing primitives shared by the dispatcher and the protocol drivers.

`TokenBucket` caps a link's submit rate (the per-bind `max_per_second` an operator imposes) and
`Backoff` spaces out reconnects and retries exponentially. Both take their clock (and the bucket its
sleep) as parameters so that tests can drive time by hand instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """A bucket of `burst` tokens refilled at `rate_per_second`; one token per submit.

    The bucket starts full so that a link that was idle may send a short burst at once, which is
    what operators' per-second limits tolerate; sustained traffic is held to the rate.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = float(rate_per_second)
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

    def delay(self) -> float:
        """Seconds until a token is available (0 when one is available now)."""
        self._refill()
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def try_acquire(self) -> bool:
        """Take a token if one is available now, without waiting."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        async with self._lock:
            while not self.try_acquire():
                await self._sleep(self.delay())


class Backoff:
    """Exponential back-off from `min_s` doubling up to `max_s`; `reset()` after a success."""

    def __init__(self, min_s: float, max_s: float, *, factor: float = 2.0) -> None:
        if min_s < 0 or max_s < min_s:
            raise ValueError("need 0 <= min_s <= max_s")
        self.min_s = float(min_s)
        self.max_s = float(max_s)
        self.factor = factor
        self._next = self.min_s

    def next(self) -> float:
        """The delay to wait now; each call without a `reset()` returns a longer one."""
        current = self._next
        self._next = min(self.max_s, max(self._next * self.factor, self.min_s))
        return current

    def peek(self) -> float:
        """The delay `next()` would return, without advancing."""
        return self._next

    def reset(self) -> None:
        self._next = self.min_s
