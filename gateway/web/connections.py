"""The panel's connections: how many, from where, and how long a request may take to arrive.

uvicorn takes every connection and waits as long as the client likes for its request (its
keep-alive timeout starts only after a first answer): 4,066 sockets that each sent half a POST
held all 4,096 descriptors of the daemon (systemd's LimitNOFILE), and SMTP intake stopped. Here
each connection is counted the moment it is accepted, before its TLS handshake (which the panel
therefore does itself: under uvicorn's, a handshake that never ended was neither counted nor
timed); one over a cap is closed at once; and one whose request (handshake, head and body) is not
in within `request_seconds` of the connection, or of the previous answer on it, is closed (and so,
when the total is reached, is the oldest such connection, to make room for the new one). A cap
or the deadline that bites is logged (`web.limit_hit`), at most once a second per limit, the rest
counted, so that a flood does not become a flood of log lines."""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from acl.logins import client_key
from gateway.bitelog import BiteLog

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Constants rather than settings: an admin panel has a handful of users, and browsers open at
    most six connections to a host."""

    # Well below the daemon's descriptors (LimitNOFILE=4096 in the shipped unit, SMTP's own cap 500).
    total: int = 128
    # Six per browser, a few admins behind one office address. Not for `[web] trusted_proxies`,
    # whose connections carry every client's requests; the total still holds for them.
    per_address: int = 24
    # From the connection (or the last answer on it) to the whole request: TLS handshake, head and
    # body. Panel requests are small forms; a client this slow is holding a descriptor, not working.
    request_seconds: float = 10.0


class Gate:
    """The panel's open connections and the limits they live within; one per server."""

    def __init__(self, limits: ConnectionLimits, trusted_proxies: Iterable[str] = ()) -> None:
        self.limits = limits
        self.trusted = frozenset(trusted_proxies)
        self.tls: ssl.SSLContext | None = None  # set by the server once the pair has loaded
        self.bite = BiteLog("web.limit_hit")
        self.open: dict[PanelConnection, str] = {}  # connection -> its address's key
        self._per_key: Counter[str] = Counter()

    def admit(self, conn: PanelConnection, address: str) -> bool:
        """Count a new connection, or say why not (then nothing is counted).

        At the total, the oldest connection still waiting for its request makes room (slow clients
        from many addresses would otherwise keep every admin out until the deadline); only when
        every connection has a request in is the new one refused."""
        key = client_key(address)
        if address not in self.trusted and self._per_key[key] >= self.limits.per_address:
            self.bite("per_address", address=address, cap=self.limits.per_address)
            return False
        if len(self.open) >= self.limits.total:
            oldest = next((c for c in self.open if c.waiting()), None)
            self.bite("connections", address=address, cap=self.limits.total, made_room=oldest is not None)
            if oldest is None:
                return False
            self.release(oldest)
            oldest.abort()
        self.open[conn] = key
        self._per_key[key] += 1
        return True

    def release(self, conn: PanelConnection) -> None:
        key = self.open.pop(conn, None)
        if key is not None:
            self._per_key[key] -= 1
            if not self._per_key[key]:
                del self._per_key[key]

    def close_all(self) -> None:
        """At stop: uvicorn closes the connections it knows, not those still in a TLS handshake."""
        for conn in list(self.open):
            conn.abort()


class PanelConnection(H11Protocol):
    """uvicorn's h11 protocol, counted by the gate and closed when its request is too slow."""

    def __init__(self, *args: Any, gate: Gate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate
        self._raw: asyncio.Transport | None = None  # the socket's own transport, under any TLS
        self._address = ""
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # (uvloop's transports, the daemon's, are not asyncio.Transport subclasses: no isinstance.)
        if self._raw is not None:  # the TLS layer's transport, its handshake done
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else ""
        if not self.gate.admit(self, self._address):
            transport.abort()
            return
        self._raw = transport
        self._arm()
        if self.gate.tls is None:
            super().connection_made(transport)
            return
        # What `create_server(ssl=...)` does inside, done here so that the handshake is counted and
        # timed as part of the request. In place, before this call returns: `loop.start_tls` would
        # switch protocols a loop iteration later, and uvloop hands the ClientHello to whichever
        # protocol the socket has by then (pause_reading here does not hold it back).
        seconds = self.gate.limits.request_seconds
        waiter = self.loop.create_future()
        waiter.add_done_callback(self._handshake_over)
        tls = sslproto.SSLProtocol(
            self.loop,
            self,
            self.gate.tls,
            waiter,
            server_side=True,
            ssl_handshake_timeout=seconds,
            ssl_shutdown_timeout=seconds,  # a client that never answers the close holds no descriptor
        )
        transport.set_protocol(tls)
        tls.connection_made(transport)

    def _handshake_over(self, waiter: asyncio.Future[None]) -> None:
        """Done, failed, timed out or abandoned; only done calls `connection_made` (before this)."""
        error = None if waiter.cancelled() else waiter.exception()  # retrieved: asyncio logs it otherwise
        if self.transport is None:
            log.debug("web.tls_handshake_failed", address=self._address, error=str(error))
            self._gone()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        if self.transport is None:  # refused, or never past its TLS handshake
            return
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own time

    def waiting(self) -> bool:
        """Still waiting for its request: in its TLS handshake, or its head or body not all in."""
        if self.transport is None:
            return True
        return not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        elif self._raw is not None:
            self._raw.abort()

    def _gone(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.gate.release(self)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.gate.limits.request_seconds, self._too_slow)

    def _too_slow(self) -> None:
        """The request is not all in: close. One that is in is left to the app, however long it takes
        (a CSV export), and the answer re-arms the deadline for the next."""
        self._deadline = None
        if not self.waiting():
            return
        self.gate.bite("request_time", address=self._address, seconds=self.gate.limits.request_seconds)
        self.abort()
