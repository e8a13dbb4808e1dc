"""A late answer's window is credited the reader's pause as a submit's timer is, but past the pause's
bound it ends as a window does (no late answer: None), not by ending the session as flooded: a
long but finite load of MOs kept the reader paused past five response timeouts while one submit's
late window ran, and the session whose answers were still being read was dropped."""

from __future__ import annotations

import asyncio

from smsc.stalls import ReadPause, ResponseTimer


async def test_a_late_window_past_the_pause_bound_expires_and_a_requests_timer_ends_the_session() -> None:
    loop = asyncio.get_running_loop()
    pause = ReadPause(loop)
    flooded: list[str] = []
    pause.bound(0.3, lambda: flooded.append("session ended"))
    pause.begin()  # the reader stands paused behind MOs throughout
    expired: list[str] = []
    window = ResponseTimer(loop, 0.05, lambda: expired.append("window"), pause, ends_session=False)
    request = ResponseTimer(loop, 0.05, lambda: expired.append("request"), pause)
    try:
        async with asyncio.timeout(5):
            while len(expired) + len(flooded) < 2:
                await asyncio.sleep(0.05)
    finally:
        window.cancel()
        request.cancel()
        pause.end()
    assert (expired, flooded) == (["window"], ["session ended"])
