"""Link pacing (token bucket, window, throttle pauses) and back-off, driven by a hand-moved clock."""

from __future__ import annotations

import asyncio

import pytest

from smsc.base import Outcome
from smsc.pacing import LinkPacer, TokenBucket, backoff


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


def test_backoff_doubles_up_to_the_cap() -> None:
    # Delays grow 1, 2, 4 ... up to the cap; a huge attempt count neither overflows nor passes it.
    assert [backoff(n, 1, 10) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff(0, 5, 900) == 5 and backoff(10_000, 5, 900) == 900


def test_backoff_with_zero_base_stays_zero() -> None:
    # A zero base is allowed (immediate retries) and does not turn into a division trap.
    assert [backoff(n, 0, 5) for n in range(1, 4)] == [0, 0, 0]


def test_a_submit_that_did_not_go_gives_its_token_back() -> None:
    # A part found expired (or settled, or its account suspended) after its token: nothing went, so
    # the next part goes at once; at 1/s, ten such parts had held the next SMS ten seconds.
    clock = FakeClock()
    pacer = LinkPacer(10, 1, 1, clock=clock, sleep=clock.sleep)
    assert pacer.try_ready()
    pacer.unready()
    assert pacer.try_ready()  # the same second: the token and the 1-per-second place came back
    assert not pacer.try_ready()
    assert pacer.bucket.delay() == pytest.approx(1.0)
    pacer.unready()
    pacer.unready()  # more than was taken: the bucket still holds no more than its burst
    assert pacer.try_ready() and not pacer.try_ready()


def test_a_submit_refused_unsent_is_no_submit_and_gives_its_token_back() -> None:
    clock = FakeClock()
    pacer = LinkPacer(10, 1, 1, clock=clock, sleep=clock.sleep)
    pacer.reserve()
    assert pacer.try_ready()
    pacer.release(Outcome.TEMPORARY, unsent=True)  # the link was not up: nothing written
    assert pacer.sent == 0 and pacer.free() == 10
    assert pacer.try_ready()  # the same second: the token came back


def test_pacer_window_counts_reservations() -> None:
    # The dispatcher reserves a place per assigned part; the window is full at `window`.
    pacer = LinkPacer(2, 100, 1, clock=FakeClock())
    pacer.reserve()
    pacer.reserve()
    assert pacer.free() == 0
    pacer.release(Outcome.ACCEPTED)
    assert pacer.free() == 1 and pacer.sent == 1


async def test_throttle_pauses_grow_and_reset_on_success() -> None:
    # Each throttle seen after the pause ended doubles the pause; throttles answered during the
    # pause (submits already in flight) do not; a success forgets them.
    clock = FakeClock()
    pacer = LinkPacer(5, 1000, 1, max_pause=3, clock=clock, sleep=clock.sleep)
    pauses = []
    for _ in range(4):
        pacer.record(Outcome.THROTTLED)
        pacer.record(Outcome.THROTTLED)  # in flight when the first came back: no extra growth
        pauses.append(pacer.pause_left())
        await pacer.ready()
    assert pauses == [1, 2, 3, 3] and clock.slept[:4] == [1, 2, 3, 3]
    pacer.record(Outcome.ACCEPTED)
    pacer.record(Outcome.THROTTLED)
    assert pacer.pause_left() == 1


async def test_pacer_submit_waits_for_room_in_the_window() -> None:
    # Callers without a dispatcher get the window enforced: never more than `window` outstanding.
    pacer = LinkPacer(2, 1000, 0)
    gate = asyncio.Event()
    outstanding, peak = 0, 0

    async def send() -> Outcome:
        nonlocal outstanding, peak
        outstanding += 1
        peak = max(peak, outstanding)
        await gate.wait()
        outstanding -= 1
        return Outcome.ACCEPTED

    tasks = [asyncio.create_task(pacer.submit(send, lambda o: o)) for _ in range(5)]
    while pacer.in_flight < 2:
        await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == [Outcome.ACCEPTED] * 5
    assert peak == 2 and pacer.in_flight == 0
