"""A step of the wall clock does not change how long a link was down.

The outage's length came from the wall clock: with the clock stepped 2 days ahead (NTP at boot, an
admin's `date -s`, a VM restored), a link down about 90 s was logged "down_for 48.0 h", and "45.0 h"
once it was stepped 3 h back; `status` and the panel said the same. The length is now counted on boot
time, which no step moves; only "down since HH:MM" reads the wall clock, in its present reading.
The clocks are injected: a test cannot step the machine's own.
"""

from __future__ import annotations

import time

from gateway.linkstatus import down_words
from smsc.outage import Outage, outage_words

DAY = 86_400.0


class Wall:
    """The wall clock, stepped by the test."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


class Elapsed:
    """Boot time, moved on by the test alone."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_link_down_a_moment_reads_so_though_the_clock_was_stepped_two_days_ahead() -> None:
    wall = Wall()
    outage = Outage(clock=wall)  # boot time as in the daemon
    outage.ended()  # the first connect failed: down from now
    wall.ahead = 2 * DAY
    down_for = outage.down_for()
    assert down_for is not None and down_for < 3600, outage_words(down_for or 0.0)
    since = outage.since
    assert since is not None and 0 <= wall() - since < 3600  # in the clock's present reading
    wall.ahead -= 3 * 3600  # and stepped 3 h back
    assert (outage.down_for() or 0.0) < 3600
    outage.bound()
    held = outage.held()
    assert held is not None and held[0] < 3600 and held[1] == 2, held


def test_the_length_logged_and_shown_is_the_time_elapsed() -> None:
    wall, elapsed = Wall(), Elapsed()
    outage = Outage(clock=wall, elapsed=elapsed)
    assert outage.since is None and outage.down_for() is None and outage.held() is None  # up
    outage.ended()  # a session that held ended: down from now
    elapsed.now += 60
    wall.ahead = 2 * DAY
    outage.ended()  # a connect failed
    elapsed.now += 27
    assert outage_words(outage.down_for() or 0.0) == "87 s"
    now = wall()
    since = outage.since
    assert since is not None
    assert down_words(since, now, lambda ts: "08:08") == "down since 08:08 (87 s)"
    assert abs(now - since - 87) < 1 and outage.since == since  # not moved by a look
    outage.bound()
    elapsed.now += 30  # the session proves it holds
    assert outage.held() == (87.0, 2)
    assert outage.since is None and outage.down_for() is None
