"""systemd's notify protocol ($NOTIFY_SOCKET) and its watchdog's interval, for every part of the daemon.

Apart from `gateway.supervisor`, which held them, because the store tells systemd of its own work at
the start (`gateway.store.rescue`): importing them from the supervisor put the supervisor, and what it
imports in turn, behind the store, which sits below them all. This module imports nothing of the gateway.
"""

from __future__ import annotations

import os
import socket
from contextlib import suppress

WATCHDOG_DEFAULT_INTERVAL = 2.0


def sd_notify(message: str) -> None:
    """systemd's notify protocol, without a dependency: one datagram to $NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(message.encode())


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec (as $WATCHDOG_USEC), as sd_watchdog_enabled(3) advises."""
    with suppress(KeyError, ValueError):
        usec = int(os.environ["WATCHDOG_USEC"])
        if usec > 0:
            return max(usec / 2e6, 0.01)
    return WATCHDOG_DEFAULT_INTERVAL
