"""Response timers that do not take a stalled event loop for a silent peer.

A daemon paused longer than a response timeout (a VM paused, SIGSTOP, a long synchronous write)
finds on waking both its timers due and the SMSC's answers waiting in the socket. The loop runs the
due timers before the reads they wake: every submit timed out at once, a window of them in a row
ended the SMPP session (a CIMD2 one at the first), and the answers died with it; their SMS waited
out the late-answer grace and went a second time. A timer that fires well past its time waits once
more, briefly, and the reads run first; due again after that, it was not answered in the time the
peer had.

The same holds for a reader we stopped ourselves (`ReadPause`): at the bound of what the link keeps
in memory for its deliveries (`smsc.backpressure.HELD_LIMIT`) the rest of a flood waits in TCP, and
the answers to our requests wait behind it. A timer does not count that time, or an SMSC that pushed
more MOs than we take at once saw each submit it had answered taken for unanswered and sent again.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

# A timer this far past its time fired late because the loop stood still, not the peer.
STALL_SECONDS = 1.0
# Its wait more: many loop turns, for the answers that came meanwhile to be read first.
RECHECK_SECONDS = 0.5
# The loop's pulse (`LoopWatch`), and how long after a stall what is read may still be from during it
# (the reads it woke run in the next turns, a backlog of them over some).
PULSE_SECONDS = 0.25
AFTER_STALL_SECONDS = 1.0
# The pause one response timer is credited at most, in response timeouts (`ReadPause.bound`), and why
# the session ends past it.
FLOOD_CREDIT = 5
FLOODED = "SMSC flooding: the answers to our requests unreadable behind its MOs"


class ReadPause:
    """The time one connection's reader stood still for our sake, not the peer's; see the module
    docstring. `begin` and `end` bracket each such wait."""

    __slots__ = ("_loop", "_since", "_total", "limit", "overrun")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._since: float | None = None
        self._total = 0.0
        # The most pause one timer is credited, and what runs past it (`bound`); none: no bound.
        self.limit: float | None = None
        self.overrun: Callable[[], object] | None = None

    def bound(self, limit: float, overrun: Callable[[], object]) -> None:
        """Credit a timer at most `limit` seconds of pause; past that `overrun` runs instead of its
        expiry. An answer waits only behind what the peer wrote before it, which a reader taking MOs
        at all reads in bounded time: a flood that never ends kept the reader paused almost always,
        every timer and keep-alive was pushed back for ever and no submit failed over. The session
        is then ended as the peer's doing, blaming no request (the MOs held are delivered again)."""
        self.limit, self.overrun = limit, overrun

    @property
    def paused(self) -> bool:
        return self._since is not None

    def begin(self) -> None:
        if self._since is None:
            self._since = self._loop.time()

    def end(self) -> None:
        if self._since is not None:
            self._total += self._loop.time() - self._since
            self._since = None

    async def wait(self, room: asyncio.Event) -> None:
        """The reader's wait for `room` (its deliveries held past their bound until enough are handed
        up), bracketed as a pause: the answers to our requests wait in TCP behind the rest meanwhile,
        and no timer of theirs counts it. Both drivers' readers wait here."""
        if room.is_set():
            return
        self.begin()
        try:
            await room.wait()
        finally:
            self.end()

    def total(self) -> float:
        """Seconds paused so far, the pause under way included."""
        since = self._since
        return self._total if since is None else self._total + self._loop.time() - since


class ResponseTimer:
    """`loop.call_later(seconds, expire)`, but a firing late by more than STALL_SECONDS waits
    RECHECK_SECONDS once more before `expire` runs, and the time `pause` stood still is added to its
    own (its answer may be waiting behind it): while paused it looks again every RECHECK_SECONDS, and
    after a pause it leaves the reads at least that long; past the pause's `limit` of credit its
    `overrun` runs instead (`ReadPause.bound`), or, for a timer that is no request's (`ends_session`
    false: a late answer's window, which a submit's own timer already stands for), its expiry."""

    __slots__ = ("_credited", "_deadline", "_ends", "_expire", "_handle", "_loop", "_pause", "_paused")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        seconds: float,
        expire: Callable[[], object],
        pause: ReadPause | None = None,
        *,
        ends_session: bool = True,
    ) -> None:
        self._loop, self._expire, self._pause, self._ends = loop, expire, pause, ends_session
        self._deadline = loop.time() + seconds
        self._paused = self._credited = pause.total() if pause is not None else 0.0
        self._handle = loop.call_later(seconds, self._fire, False)

    def _fire(self, rechecked: bool) -> None:
        loop, pause = self._loop, self._pause
        if pause is not None:
            paused = pause.total()
            owed, self._paused = paused - self._paused, paused
            limit = pause.limit
            if limit is not None and pause.overrun is not None and paused - self._credited > limit:
                (pause.overrun if self._ends else self._expire)()
                return
            if owed > 0.0 or pause.paused:
                now = loop.time()
                self._deadline = max(self._deadline + owed, now + RECHECK_SECONDS)
                wait = RECHECK_SECONDS if pause.paused else self._deadline - now
                self._handle = loop.call_later(wait, self._fire, rechecked)
                return
        if not rechecked and loop.time() - self._handle.when() > STALL_SECONDS:
            self._handle = loop.call_later(RECHECK_SECONDS, self._fire, True)
            return
        self._expire()

    def cancel(self) -> None:
        self._handle.cancel()


class LoopWatch:
    """When the loop last stood still, by a pulse every PULSE_SECONDS that comes late by more than
    STALL_SECONDS after a stall: bytes read just after one (or while the pulse is overdue, on a loop
    that runs reads before timers) may have come in at any moment of it."""

    __slots__ = ("_due", "_stall")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # The loop is not kept: `_WATCHES` holds it weakly, and a watch holding it would keep it.
        self._stall = (0.0, float("-inf"))  # (began, ended) of the last stall seen
        self._due = loop.time() + PULSE_SECONDS
        loop.call_at(self._due, self._pulse)

    def _pulse(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._due > STALL_SECONDS:
            self._stall = (self._due - PULSE_SECONDS, now)
        self._due = now + PULSE_SECONDS
        loop.call_at(self._due, self._pulse)

    def earliest(self, at: float) -> float:
        """The earliest loop time bytes read at `at` may have arrived: `at`, or when the loop last ran
        before the stall that this read comes right after."""
        last = self._due - PULSE_SECONDS  # when the pulse last ran
        if at - last > PULSE_SECONDS + STALL_SECONDS:  # overdue: the loop stood still until now
            return last
        began, ended = self._stall
        return began if 0.0 <= at - ended <= AFTER_STALL_SECONDS else at


_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWatch] = weakref.WeakKeyDictionary()


def earliest(loop: asyncio.AbstractEventLoop, at: float) -> float:
    """The earliest loop time bytes read at `at` may have arrived (`LoopWatch.earliest`); the loop's
    watch starts at its first read."""
    watch = _WATCHES.get(loop)
    if watch is None:
        watch = _WATCHES[loop] = LoopWatch(loop)
    return watch.earliest(at)
