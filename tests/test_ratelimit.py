"""Token bucket and back-off, driven by a hand-moved clock instead of real time."""

from __future__ import annotations

import asyncio

import pytest

from smsc.ratelimit import Backoff, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_a_burst_then_the_rate() -> None:
    # A full bucket lets `burst` submits through at once; the next waits 1/rate.
    clock = FakeClock()
    bucket = TokenBucket(4, burst=2, clock=clock, sleep=clock.sleep)
    assert bucket.try_acquire() and bucket.try_acquire()
    assert not bucket.try_acquire()
    assert bucket.delay() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.try_acquire()


def test_bucket_never_holds_more_than_burst() -> None:
    # An idle hour does not bank an hour of tokens.
    clock = FakeClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    clock.now += 3600
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


async def test_acquire_waits_for_the_missing_fraction() -> None:
    # acquire() sleeps exactly as long as the next token needs, then takes it.
    clock = FakeClock()
    bucket = TokenBucket(2, burst=1, clock=clock, sleep=clock.sleep)
    await bucket.acquire()
    await bucket.acquire()
    await bucket.acquire()
    assert clock.slept == [pytest.approx(0.5), pytest.approx(0.5)]


async def test_acquire_serves_waiters_in_order() -> None:
    # Concurrent waiters get their tokens in arrival order, one per interval.
    clock = FakeClock()
    bucket = TokenBucket(1, burst=1, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(4)))
    assert order == [0, 1, 2, 3]
    assert sum(clock.slept) == pytest.approx(3.0)


def test_bucket_rejects_nonsense() -> None:
    # A zero rate would wait forever; refuse it at construction.
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, burst=0)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    # Reconnect delays grow 1, 2, 4 ... up to the max, and start over after a success.
    b = Backoff(1, 10)
    assert [b.next() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    b.reset()
    assert b.peek() == 1 and b.next() == 1


def test_backoff_with_zero_minimum_stays_zero() -> None:
    # A zero minimum is allowed (immediate retries) and does not turn into a division trap.
    b = Backoff(0, 5)
    assert [b.next() for _ in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError):
        Backoff(5, 1)
