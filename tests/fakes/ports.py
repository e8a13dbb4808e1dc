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


_END = min(_LAST, _ephemeral_start())
# Two test sessions on one machine (a developer's and CI's) start at different places.
_next = itertools.count(_FIRST + (os.getpid() * 97) % (_END - _FIRST))


def free_port() -> int:
    """A port nobody listens on now, below the ephemeral range; each call gives a different one."""
    for _ in range(_END - _FIRST):
        port = _FIRST + (next(_next) - _FIRST) % (_END - _FIRST)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {_FIRST} and {_END}")
