"""Intake workers share the relay port's connections: one accept per wake-up, and a common start.

Every intake worker accepts on the one listening socket the daemon bound (`gateway/intake_workers.py`).
asyncio's server accepts up to 100 connections per readiness of that socket, uvloop's until the
queue is empty; mail servers keep their connections, so after a restart the first worker to serve
took every reconnect waiting in the kernel's queue and kept them (a soak: 10,565 mails against 12).
Two things are needed, either alone does not help:
- `FairServer`: each readiness accepts ONE connection and returns to the loop, so that the workers
  woken for one queue take turns, and a busy one (slower back to its loop) takes fewer. Not a
  small `backlog=` to `create_server`: that is listen() on the shared socket, the kernel's queue
  for every worker. Beside other workers it then leaves the socket to them for SHARE_GAP_SECONDS:
  a worker's loop turn is some 0.1 ms, and a process not scheduled for a few ms (2 cores, the
  daemon and the workers busy) used to find most of the queue taken when it came back (3 of 20).
- `Release` (the daemon's side): a worker begins accepting when the daemon sends `g`: once every
  worker is ready, or GO_WAIT_SECONDS after the first one was (a worker failing to start must not
  leave the port unserved), or at once when another worker already accepts (one restarted alone).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

import structlog

from gateway.bitelog import FaultLog

log = structlog.get_logger(__name__)
_paused = FaultLog(log, interval=60.0)  # a minute's pauses in one line, their count in `suppressed`

GO_WAIT_SECONDS = 2.0  # the first ready worker waits this long for the others before it accepts
# After each connection accepted beside other workers: at most 1,000 new connections a second per
# worker in a burst (mail servers keep theirs); a connection arriving alone waits no longer.
SHARE_GAP_SECONDS = 0.001
ACCEPT_RETRY_SECONDS = 1.0  # out of descriptors or buffers: accepting pauses, as asyncio's server does
# accept() failing for want of resources: the socket stays readable, so the loop would spin on it.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Accepted(socket.socket):
    """A connection's socket whose `family` and `type` are its listening socket's, as `accept` gives
    them, kept as they were read once. `socket.socket` makes an enum of the kernel's integer at each
    read of them (some 6.6 k instructions a read): `accept` read both and the loop's
    `connect_accepted_socket` three times more, about 33 k instructions a connection, and a relay's
    MTA often brings one mail a connection."""

    __slots__ = ("_kept_family", "_kept_type")

    def __init__(
        self, family: socket.AddressFamily, type: socket.SocketKind, proto: int = 0, fileno: int | None = None
    ) -> None:
        # Set here, not by the accept after it: `dup()` makes one of this class too (`self.__class__`).
        super().__init__(family, type, proto, fileno)
        self._kept_family, self._kept_type = family, type

    @property
    def family(self) -> socket.AddressFamily:
        return self._kept_family

    @property
    def type(self) -> socket.SocketKind:
        return self._kept_type


class FairServer:
    """A server on a listening socket shared with other processes: one connection per readiness.

    As asyncio's `Server` where the worker uses it: `start_serving` (here on the daemon's `g`),
    `close` (stops accepting and closes this process's copy of the socket; connections already
    made go on), `wait_closed`, `is_serving`, `sockets`. Runs on asyncio's loop and on uvloop."""

    def __init__(
        self, factory: Callable[[], asyncio.Protocol], sock: socket.socket, *, shared: bool = True
    ) -> None:
        """`shared`: other workers accept on this socket too (SHARE_GAP_SECONDS after each accept)."""
        self._loop = asyncio.get_running_loop()
        self._gap = SHARE_GAP_SECONDS if shared else 0.0
        self._factory = factory
        self._sock: socket.socket | None = sock
        sock.setblocking(False)  # as create_server(sock=) did: the flag is the shared socket's anyway
        self._kind = (sock.family, sock.type, sock.proto)  # what `socket.accept` gives each connection
        self._serving = False
        self._retry: asyncio.TimerHandle | None = None
        self._opening: set[asyncio.Task[object]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._sock is None else (self._sock,)

    def is_serving(self) -> bool:
        return self._serving

    def start_serving(self) -> None:
        if self._sock is not None and not self._serving:
            self._serving = True
            self._loop.add_reader(self._sock.fileno(), self._accept_one)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._serving:
            self._loop.remove_reader(sock.fileno())
            self._serving = False
        sock.close()

    async def wait_closed(self) -> None:
        """Until the connections accepted before `close` have their protocol (they then go on)."""
        if self._opening:
            await asyncio.wait(list(self._opening))

    def _accept_one(self) -> None:
        assert self._sock is not None
        try:
            fd, _peer = self._sock._accept()  # `socket.accept`'s, less its reads of family and type
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or its client gave up while it waited
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                # As asyncio's loop does with it: logged, and tried again at the next readiness.
                log.error("smtp.accept_failed", error=str(exc))
                return
            # Once a second while descriptors run out: throttled, with the count of the lines held back.
            _paused.error("smtp.accept_paused", exc, error=str(exc), seconds=ACCEPT_RETRY_SECONDS)
            self._loop.remove_reader(self._sock.fileno())
            self._retry = self._loop.call_later(ACCEPT_RETRY_SECONDS, self._resume)
            return
        family, kind, proto = self._kind
        conn = _Accepted(family, kind, proto, fileno=fd)
        # (`accept` makes it blocking only after a listening socket with a timeout; this one has none)
        conn.setblocking(False)
        task = self._loop.create_task(self._open(conn))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)
        if self._gap:
            self._loop.remove_reader(self._sock.fileno())
            self._retry = self._loop.call_later(self._gap, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if self._sock is not None and self._serving:
            self._loop.add_reader(self._sock.fileno(), self._accept_one)

    async def _open(self, conn: socket.socket) -> object:
        try:
            return await self._loop.connect_accepted_socket(self._factory, conn)
        except Exception as exc:
            conn.close()
            log.warning("smtp.connection_not_opened", error=str(exc))
            return None


class Release:
    """The daemon's side: when each worker may begin accepting (`go`, which sends it `g`)."""

    def __init__(self, workers: int, wait: float = GO_WAIT_SECONDS) -> None:
        self.workers = workers
        self.wait = wait
        self.holding: dict[str, Callable[[], object]] = {}  # ready, not yet told to accept
        self.accepting: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    def ready(self, name: str, go: Callable[[], object]) -> None:
        """Worker `name` serves and holds its accept until `go` is called."""
        self.holding[name] = go
        if self.accepting or len(self.holding) >= self.workers:
            self._release()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.wait, self._release)

    def gone(self, name: str) -> None:
        """Its process ended: a new one holds again, unless another worker accepts by then."""
        self.holding.pop(name, None)
        self.accepting.discard(name)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for name, go in self.holding.items():
            go()
            self.accepting.add(name)
        self.holding.clear()
