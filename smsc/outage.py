"""Whether a link is down, since when, and why: what `status`, the panel and the log say of an outage.

Both drivers keep an `Outage`, decide with `session_held` whether a session that logged in is up,
log the outage's length in `outage_words` and a failed connect in `connect_failure`. This is the
link's health as people read it, apart from `smsc.base`'s contract of what a driver submits and
delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)  # Linux's; the monotonic one elsewhere
# A wall clock this far from the boot time elapsed was stepped; NTP's slewing (0.5 ms/s at most) stays
# below it for hours, and the time a link went down is then read again in the clock's new reading.
STEP_SECONDS = 5.0


def boottime() -> float:
    """Seconds since boot, suspend included: elapsed time no step of the wall clock moves (NTP at
    boot, an admin's `date -s`, a VM restored), nor a suspend hides, as it does from the monotonic clock."""
    return time.clock_gettime(_BOOTTIME)


@dataclass(slots=True)
class Outage:
    """Since when a link has had no session up, kept by its driver in memory.

    The last error's time moves with each retry, so a 30-s blip and a 20-minute SMSC outage read
    alike; the time the link went down does not, and `status` and the panel say it ("down since
    08:08 (21 min)"). A link that never came up is down since its first failed attempt.

    A session counts as up only once it held (`session_held`), the proof the back-off takes too: an
    SMSC at its bind limit or holding a suspended account takes the bind and drops it at once, and
    counting each such bind as the end of the outage logged "up again after 0 s down" every few
    seconds while `down since` never grew past the last flap, so a link useless for hours never
    reached "Needing attention". The driver calls `bound` when a session logs in, `held` once it
    held, whose answer it logs once, and `ended` after each session.

    Lengths are measured on `elapsed` (boot time), not the wall clock: a link down 90 s was logged
    "down_for 48.0 h" after the clock was stepped 2 days ahead. The wall time it went down (`since`)
    stays as read then until the clock is found stepped: then it is read again from the time elapsed,
    so that `status` and the panel say the same length, and the time in the clock's present reading."""

    clock: Callable[[], float] = time.time
    elapsed: Callable[[], float] = boottime
    attempts: int = 0  # sessions tried since `since` that did not come up (or did not hold)
    _down_at: float | None = field(default=None, init=False, repr=False)  # `elapsed` when it went down
    _down_wall: float = field(default=0.0, init=False, repr=False)  # ... and the wall clock (`since`)
    _bound_at: float | None = field(default=None, init=False, repr=False)  # this session's login, `elapsed`
    _held: bool = field(default=False, init=False, repr=False)  # this session held

    @property
    def since(self) -> float | None:
        """The wall time the link went down (None while up), the same at each look but after a step."""
        down_for = self.down_for()
        if down_for is None:
            return None
        read = self.clock() - down_for
        if abs(read - self._down_wall) > STEP_SECONDS:
            self._down_wall = read
        return self._down_wall

    def bound(self) -> None:
        """A session logged in: not yet up, until it held."""
        self._bound_at, self._held = self.elapsed(), False

    def ended(self) -> None:
        """A session ended: a link that was up went down now; one that was down tried once more."""
        was_up = self._held
        self._bound_at, self._held = None, False
        if was_up or self._down_at is None:
            self._down_at, self._down_wall = self.elapsed(), self.clock()
            self.attempts = 0 if was_up else 1
        else:
            self.attempts += 1

    def held(self) -> tuple[float, int] | None:
        """The session logged in at `bound` held: how long the link was down (until that login) and in
        how many attempts (this one too), or None when it was not down (its first session, or one
        after a stop)."""
        self._held = True
        bound_at = self.elapsed() if self._bound_at is None else self._bound_at
        if self._down_at is None:
            return None
        outage = (max(0.0, bound_at - self._down_at), self.attempts + 1)
        self._down_at, self.attempts = None, 0
        return outage

    def down_for(self) -> float | None:
        """Seconds since the link went down, or None while it is up."""
        return None if self._down_at is None else max(0.0, self.elapsed() - self._down_at)


async def session_held(
    closed: asyncio.Event, answered: asyncio.Event, after: float, probe: Callable[[], object]
) -> bool:
    """Whether a session just logged in holds: it stayed up `after` seconds (`smsc.pacing.stable_after`)
    and the SMSC answered a request of ours on it (`answered`, cleared by the caller at the login);
    False once it closed first. With nothing answered by then, `probe()` asks for an answer at once
    (an enquire_link, an alive), so an idle session that holds is up then, not at the keepalive's turn.

    Time alone was no proof: the 30 s equal the default enquire_link interval, so an SMSC that takes
    each bind and then answers nothing (hung behind a live socket) had the session counted as up
    before its first enquire_link went unanswered, and the link said "up again" every cycle. Nor is
    an answer alone: such an SMSC may answer an enquire_link, or refuse a submit, then drop us. A
    probe left unanswered ends the session by the keepalive's response timeout at the latest."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closed.wait(), after)
    if closed.is_set():
        return False
    if not answered.is_set():
        probe()
        waits = [asyncio.ensure_future(closed.wait()), asyncio.ensure_future(answered.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
    return not closed.is_set()


def outage_words(seconds: float) -> str:
    """A length of an outage as the log says it: "45 s", "21 min", "3.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def connect_failure(host: str, port: int, exc: BaseException) -> str:
    """A failed connect in words ("connect 10.0.0.5:2775: Connection refused"): asyncio's own text
    ("[Errno 111] Connect call failed ('10.0.0.5', 2775)") names the address twice and the cause never.

    A name that does not resolve raises socket.gaierror, whose errno is getaddrinfo's own negative
    code: os.strerror read it as "Unknown error -2"."""
    if isinstance(exc, socket.gaierror):
        return f"connect {host}:{port}: host name does not resolve ({exc.strerror or exc})"
    errno = getattr(exc, "errno", None)
    why = os.strerror(errno) if isinstance(errno, int) else str(exc) or "timed out"
    return f"connect {host}:{port}: {why}"
