"""The relay port answered by the daemon itself, `421`, while no intake worker can serve it.

The daemon holds the relay port's listening socket (`gateway.intake_workers`); only its workers
accept on it. A worker that cannot start at all (its interpreter not executable for the daemon's
user, a broken install: PermissionError at every spawn) is restarted for ever, and meanwhile the
port still took connections into the kernel's queue and nobody greeted them: a mail server waited
out its greeting timeout (Postfix: 300 s) on every try, and a queue of them behind. Once a worker's
start has failed and none serves, the daemon accepts each connection itself and answers
`421 4.3.2`, at once: the client tries its next MX or later, and `smsgw status` already says the
worker is crash-looping. Not before a start fails: while workers start (a second or two) and
between a crash and its restart, connections wait in the queue as they always did, to be served.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

NO_WORKER = "Service not available: the mail intake cannot start, please try again later"
_RETRY_SECONDS = 1.0  # out of descriptors: accepting pauses, as asyncio's own server does
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# A connection that failed while it waited in the queue (reset, a network down): accept(2) hands its
# error to the caller, to be taken like EAGAIN (asyncio's server does). Raised, each one was a
# traceback in the daemon's log while it refused.
_CONNECTION_FAILED = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EPERM,  # a firewall's rule
    }
)


class _Slot(Protocol):
    serving: bool  # its running process said it serves (`R`)
    failed: bool  # its last run ended without serving


class NoWorkerRefusal:
    """Turned on and off by the workers' supervision; `on` is whether the daemon refuses now."""

    def __init__(self, listeners: list[socket.socket], hostname: str, slots: Sequence[_Slot]) -> None:
        self.listeners = listeners
        self.slots = slots
        self.banner = f"421 4.3.2 {hostname} {NO_WORKER}\r\n".encode()
        self.on = False
        self.refused = 0
        self._closed = False

    async def run(self, slot: _Slot, run: Callable[[], Awaitable[None]]) -> None:
        """One supervised run of a worker; its end without serving counts as a failed start."""
        try:
            await run()
        finally:
            slot.failed, slot.serving = not slot.serving, False
            self.update()

    def update(self) -> None:
        self.set(not any(s.serving for s in self.slots) and any(s.failed for s in self.slots))

    def set(self, refuse: bool) -> None:
        if refuse == self.on or self._closed:
            return
        loop = asyncio.get_running_loop()
        self.on = refuse
        for sock in self.listeners:
            if refuse:
                # The workers' asyncio made the shared socket non-blocking already; one that never
                # ran did not, and a blocking accept here would hang the daemon's loop.
                sock.setblocking(False)
                loop.add_reader(sock.fileno(), self._refuse, sock)
            else:
                loop.remove_reader(sock.fileno())
        if refuse:
            log.error("intake.no_worker_serves", action="the relay port answers 421 until a worker starts")
        else:
            log.info("intake.worker_serves_again", refused=self.refused)

    def close(self) -> None:
        """Before the listeners close (a reader on a closed descriptor is another file's later)."""
        if self.on:
            self.set(False)
        self._closed = True

    def _refuse(self, sock: socket.socket) -> None:
        try:
            conn, _addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # a worker took it after all
        except OSError as exc:
            if exc.errno in _CONNECTION_FAILED:
                return
            if exc.errno in _OUT_OF_RESOURCES:
                loop = asyncio.get_running_loop()
                loop.remove_reader(sock.fileno())
                loop.call_later(_RETRY_SECONDS, self._resume, sock)
                return
            raise
        with conn:
            conn.setblocking(False)
            try:
                conn.send(self.banner)  # a fresh socket's buffer takes one line
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client left already
        self.refused += 1

    def _resume(self, sock: socket.socket) -> None:
        if self.on and not self._closed and sock.fileno() >= 0:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._refuse, sock)
