"""The panel's connection caps: how many connections, and how many from one address, and which
connection makes room for a newcomer at a cap (gateway/web/connections.py has what each connection
is doing, and its deadlines)."""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h11
import structlog

from acl.logins import client_key
from gateway.bitelog import BiteLog
from gateway.peeraddr import TrustedProxies, unmapped
from smsc.logthrottle import LogThrottle

if TYPE_CHECKING:
    from gateway.web.connections import PanelConnection

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
    # body. Panel requests are small forms (gateway/web/bodycap.py); a client this slow is holding a
    # descriptor, not working.
    request_seconds: float = 10.0
    # How long one of an address's connections must have stood idle (not a byte from its client,
    # none of ours sent to it) before a newcomer from that address, at its share, takes its place:
    # long enough for a browser to send its request on a connection it has just opened, short
    # against the request deadline, which an office behind the address would otherwise wait out.
    # At the total, how long a keep-alive connection is spared once its client has taken an answer
    # whole: a browser sends its next request within milliseconds (`PanelConnection.in_use`).
    stalled_seconds: float = 1.0
    # How long a request, head and body (on TLS, from the handshake's first byte), may take to come
    # whole before its connection counts as stalled for its address's share, whatever it trickles:
    # a browser sends a panel request at once, and a client that sent a header line (or a byte of
    # its body) every 0.4 s was never idle, so two dozen of them shut an office's browsers out for
    # as long as they liked.
    head_seconds: float = 3.0
    # Connections over a cap told so in HTTP (gateway/web/refusal.py) at once; those over this are
    # closed without a word, as before, so that a flood of refusals holds a bounded few descriptors.
    refusals: int = 32
    # Newcomers an address at its share may have waiting for their request heads (`Gate.admit`):
    # one whose head comes whole takes the place of one of the address's connections still
    # trickling its head, so that such connections, replaced by their own reconnections as fast as
    # they were closed, do not win every free place from a browser behind the same address.
    waiting: int = 24


# What a connection is doing, as the deadline and the gate see it (`PanelConnection.phase`).
HANDSHAKE, REQUEST, HANDLING, WRITING, CLOSING = "handshake", "request", "handling", "writing", "closing"
# The caps that refuse a connection (`Gate.admit`), as `web.limit_hit` names them.
PER_ADDRESS, TOTAL = "per_address", "connections"


class Gate:
    """The panel's open connections and the limits they live within; one per server."""

    def __init__(self, limits: ConnectionLimits, trusted_proxies: Iterable[str] = ()) -> None:
        self.limits = limits
        self.trusted = TrustedProxies(trusted_proxies)
        self.tls: ssl.SSLContext | None = None  # set by the server once the pair has loaded
        self.bite = BiteLog("web.limit_hit")
        self.warnings = LogThrottle(log)  # uvicorn's, about requests (gateway/web/running.py)
        self.open: dict[PanelConnection, str] = {}  # connection -> its address's key
        self._per_key: Counter[str] = Counter()  # `open` less `waiting`, by address
        self.waiting: dict[PanelConnection, str] = {}  # over their address's share, oldest first
        self.refusing = 0  # connections being told they are over a cap (gateway/web/refusal.py)

    def admit(self, conn: PanelConnection, address: str) -> str | None:
        """Count a new connection (None), or say which cap refuses it (then nothing is counted):
        `PER_ADDRESS` or `TOTAL`.

        At the total, the oldest connection the panel is not working on makes room: one waiting for
        its request, for its client to read the answer, or closing (such clients from many addresses
        would otherwise keep every admin out until the deadline, or for ever while one reads
        nothing), but not a browser's keep-alive connection between two of its requests (closed,
        the request already on its way met a reset); only when every connection has a request
        being answered or is in such use is the new one refused. At an address's share, the same
        within that address, but only among its connections idle for `stalled_seconds` or whose
        request (head and body) has taken `head_seconds` to come and is not whole: everyone behind an office's
        NAT shares the address, and the share must still keep one client from taking the total (a
        burst of new connections from one address is refused rather than push out one a browser
        there has just opened or is using). With none such but one whose head is coming, the
        newcomer waits over the share (`waiting`) for its own head, and `head_whole` decides."""
        address = unmapped(address)  # a dual-stack peer as its IPv4 address, as it is counted
        key = client_key(address)
        waits = False
        if address not in self.trusted and self._per_key[key] >= self.limits.per_address:
            idle = min((c for c in self._counted(key) if self._stalled(c)), key=_rank, default=None)
            self.bite(PER_ADDRESS, address=address, cap=self.limits.per_address, made_room=idle is not None)
            if idle is not None:
                self._evict(idle)
            elif self._trickling(key, 0.0) is None:
                return PER_ADDRESS
            else:
                waits = True
                if len(mine := [c for c, k in self.waiting.items() if k == key]) >= self.limits.waiting:
                    self._evict(mine[0])  # the longest waiting: a browser's head comes at once
        if len(self.open) >= self.limits.total:
            # The first of the most expendable kind (`open` is oldest first): a silent connection
            # before one with a request coming, and a download in progress only when nothing else
            # is left (a flood of silent connections would otherwise cut an admin's export).
            grace = self.limits.stalled_seconds
            oldest = min(
                (c for c in self.open if c.phase() != HANDLING and not c.in_use(grace)),
                key=_rank,
                default=None,
            )
            self.bite(TOTAL, address=address, cap=self.limits.total, made_room=oldest is not None)
            if oldest is None:
                return TOTAL
            self._evict(oldest)
        self.open[conn] = key
        if waits:
            self.waiting[conn] = key
        else:
            self._per_key[key] += 1
        return None

    def head_whole(self, conn: PanelConnection, held: bytes) -> bool:
        """A waiting connection's request head has come (`held`, with what followed it): it takes
        the place of its address's oldest connection whose request began before it connected and
        is still not whole, slower than a whole connection and request of its (True), or it is
        refused when there is none (False). One whose own body is still to come takes only the
        place of one whose head is: else connections trickling their bodies, connecting again as
        fast as they were closed, took each other's places and won every one from a browser."""
        key = self.waiting.get(conn)
        if key is None:
            return True
        trickling = self._trickling(key, conn.age(), bodies=_whole(held))
        if trickling is None and self._per_key[key] >= self.limits.per_address:
            return False
        if trickling is not None:
            self._evict(trickling)
        del self.waiting[conn]
        self._per_key[key] += 1
        return True

    def _counted(self, key: str) -> list[PanelConnection]:
        return [c for c, k in self.open.items() if k == key and c not in self.waiting]

    def _trickling(self, key: str, seconds: float, bodies: bool = True) -> PanelConnection | None:
        """The address's oldest counted connection whose request has been coming for `seconds` and
        is not whole (with `bodies` False, whose head is not)."""
        return next((c for c in self._counted(key) if c.request_late(seconds, bodies)), None)

    def _stalled(self, conn: PanelConnection) -> bool:
        return conn.idle_for(self.limits.stalled_seconds) or conn.request_late(self.limits.head_seconds)

    def _evict(self, conn: PanelConnection) -> None:
        self.release(conn)
        conn.abort()

    def release(self, conn: PanelConnection) -> None:
        key = self.open.pop(conn, None)
        if key is not None and self.waiting.pop(conn, None) is None:
            self._per_key[key] -= 1
            if not self._per_key[key]:
                del self._per_key[key]

    def close_all(self) -> None:
        """At stop: uvicorn closes the connections it knows, not those still in a TLS handshake."""
        for conn in list(self.open):
            conn.abort()


def _whole(held: bytes) -> bool:
    """Whether `held` is a whole request, body and all (what uvicorn's parser will make of it). One
    it cannot parse is whole too: it is answered 400 at once and trickles nothing."""
    parser = h11.Connection(h11.SERVER)
    parser.receive_data(held)
    try:
        while (event := parser.next_event()) is not h11.NEED_DATA:
            if isinstance(event, h11.EndOfMessage):
                return True
    except h11.RemoteProtocolError:
        return True
    return False


def _rank(conn: PanelConnection) -> int:
    return conn.rank()
