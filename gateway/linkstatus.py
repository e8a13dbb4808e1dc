"""The links as the status file and the panel show them: state, window, submits and their rate.

Each reader keeps its own rate window (the status file is written every 2 s, the panel is read
when someone looks), so one reading does not shorten the other's.
"""

from __future__ import annotations

import time
from typing import Any


class LinkView:
    """Call it for a snapshot of every link of `dispatcher` (a `gateway.dispatcher.Dispatcher`)."""

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher
        started = time.monotonic()
        self._seen: dict[str, tuple[float, int]] = {name: (started, 0) for name in dispatcher.links}

    def __call__(self) -> dict[str, dict[str, Any]]:
        d = self.dispatcher
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        for name, link in d.links.items():
            pacer = d.pacers[name]
            stats = link.stats()
            then, sent = self._seen.get(name, (now, pacer.sent))
            self._seen[name] = (now, pacer.sent)
            out[name] = {
                "rate": round((pacer.sent - sent) / (now - then), 1) if now > then else 0.0,
                "state": str(link.state),
                "in_flight": pacer.in_flight,
                "window": pacer.window,
                "rate_limit": pacer.rate,  # lower than the configured one after the SMSC throttled
                "rate_configured": pacer.max_rate,
                "submitted": pacer.sent,
                "throttled": stats.throttled,
                "reconnects": stats.reconnects,
                "possible_duplicates": d.possible_duplicates(name),
                "last_error": stats.last_error,  # why it is not up (or last went down), for `status`
                "last_error_at": stats.last_error_at,
            }
        return out
