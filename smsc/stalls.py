"""Response timers that do not take a stalled event loop for a silent peer.

A daemon paused longer than a response timeout (a VM paused, SIGSTOP, a long synchronous write)
finds on waking both its timers due and the SMSC's answers waiting in the socket. The loop runs the
due timers before the reads they wake: every submit timed out at once, a window of them in a row
ended the SMPP session (a CIMD2 one at the first), and the answers died with it; their SMS waited
out the late-answer grace and went a second time. A timer that fires well past its time waits once
more, briefly, and the reads run first; due again after that, it was not answered in the time the
peer had.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# A timer this far past its time fired late because the loop stood still, not the peer.
STALL_SECONDS = 1.0
# Its wait more: many loop turns, for the answers that came meanwhile to be read first.
RECHECK_SECONDS = 0.5


class ResponseTimer:
    """`loop.call_later(seconds, expire)`, but a firing late by more than STALL_SECONDS waits
    RECHECK_SECONDS once more before `expire` runs."""

    __slots__ = ("_expire", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float, expire: Callable[[], object]) -> None:
        self._loop, self._expire = loop, expire
        self._handle = loop.call_later(seconds, self._fire, False)

    def _fire(self, rechecked: bool) -> None:
        if not rechecked and self._loop.time() - self._handle.when() > STALL_SECONDS:
            self._handle = self._loop.call_later(RECHECK_SECONDS, self._fire, True)
            return
        self._expire()

    def cancel(self) -> None:
        self._handle.cancel()
