"""The relay port's listening sockets, bound by the daemon and inherited by its intake workers
(`gateway/intake_workers.py` says why one socket for all), and how a worker's end is named."""

from __future__ import annotations

import signal
import socket

LISTEN_BACKLOG = 512  # connections the kernel holds while a worker (re)starts


def signal_name(number: int) -> str:
    """SIGKILL for 9: a worker's end as its exit status -9 says it."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port, one per address as asyncio's create_server binds them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, addr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((addr[0], port, *addr[2:]))  # port 0: the first address chooses, the rest follow
            port = port or sock.getsockname()[1]
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
