"""Two hooks into uvicorn's h11 protocol for the panel's connections (gateway/web/connections.py):
its set of running requests, so that a connection knows its own, and its logger, whose warnings a
client can make as often as it sends requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gateway.bitelog import BiteLog
from smsc.logthrottle import LogThrottle

# What uvicorn logs for each request it answers 503 above `limit_concurrency`.
CONCURRENCY_REFUSED = "Exceeded concurrency limit."


class RunningRequests:
    """The server's running requests (uvicorn's `server_state.tasks`, which its 503 counts and its
    shutdown waits for) as one connection adds to them: the same set, and that connection's latest
    request, whose end its next pipelined request waits for."""

    __slots__ = ("latest", "shared")

    def __init__(self, shared: set[asyncio.Task[None]]) -> None:
        self.shared = shared
        self.latest: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self.shared)

    def add(self, task: asyncio.Task[None]) -> None:
        self.shared.add(task)
        self.latest = task

    def discard(self, task: asyncio.Task[None]) -> None:
        self.shared.discard(task)


class RequestWarnings:
    """uvicorn's logger as one connection uses it. Its warnings each tell of one request: over
    `limit_concurrency` (answered 503), not HTTP (400), or asking for an upgrade the panel does not
    do; a client decides how many, pipelining or connecting again. They go out through the gate's
    throttles, at most one line a second per kind with the count of the rest: the 503 as the limit
    `requests` of `web.limit_hit`, the others as `web.http_warning` with uvicorn's text. Anything
    else (an error of the app) is uvicorn's logger's as before."""

    def __init__(
        self,
        logger: logging.Logger,
        bite: BiteLog,
        throttle: LogThrottle,
        address: Callable[[], str],
        cap: int | None,
    ) -> None:
        self._logger = logger
        self._bite = bite
        self._throttle = throttle
        self._address = address
        self._cap = cap

    def warning(self, msg: str, *args: Any, **_kwargs: Any) -> None:
        if msg == CONCURRENCY_REFUSED:
            self._bite("requests", address=self._address(), cap=self._cap)
            return
        text = msg % args if args else msg
        self._throttle.warning("web.http_warning", kind=msg, address=self._address(), uvicorn=text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)
