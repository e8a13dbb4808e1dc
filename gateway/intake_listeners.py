"""The relay port's listening sockets, bound by the daemon and inherited by its intake workers
(`gateway/intake_workers.py` says why one socket for all), and how a worker's end is named."""

from __future__ import annotations

import signal
import socket

from gateway.peeraddr import bind_all

LISTEN_BACKLOG = 512  # connections the kernel holds while a worker (re)starts


def signal_name(number: int) -> str:
    """SIGKILL for 9: a worker's end as its exit status -9 says it."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port, one per address ("::" as both stacks, `gateway.peeraddr`)."""
    return bind_all(host, port, LISTEN_BACKLOG)
