"""Ports for the tests' listeners, taken below the kernel's ephemeral range.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, which is also where every
outgoing connection's local port comes from: between `free_port()` and the listener's bind, a client
socket of another test (or of the daemon's own links) could take it, and the listener failed with
"address already in use". Ports below that range are never given to client sockets, and a counter
keeps one test session from handing out the same port twice.
"""

from __future__ import annotations

import itertools
import os
import socket

_FIRST, _LAST = 20000, 32000


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _share(first: int, end: int) -> tuple[int, int]:
    """This process's part of the range: under pytest-xdist each worker has its own (between one
    worker's `free_port()` and its bind, another's could otherwise take the same port)."""
    try:
        worker = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
        count = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    except (KeyError, ValueError):
        return first, end
    size = (end - first) // max(count, 1)
    return first + worker * size, first + (worker + 1) * size


_START, _END = _share(_FIRST, min(_LAST, _ephemeral_start()))
# Two test sessions on one machine (a developer's and CI's) start at different places.
_next = itertools.count(_START + (os.getpid() * 97) % (_END - _START))


def free_port() -> int:
    """A port nobody listens on now, below the ephemeral range; each call gives a different one."""
    for _ in range(_END - _START):
        port = _START + (next(_next) - _START) % (_END - _START)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {_START} and {_END}")
