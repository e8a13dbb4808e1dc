"""The addresses of the `[mail] relay` host, for telling a bounce that comes from it
(`gateway.answerbounce`): a recipient's server returns an answer mail's bounce by way of the relay
the answer went out through, and a bounce naming no recipient is taken as the answer's only from
that relay or the answer's company.

A relay given by name ("mail.acme.example:25", "localhost:25") was never resolved: no client's
address equals a name, so no bounce counted as the relay's. The name is resolved off the event
loop (`loop.getaddrinfo`, in the executor), as a bounce comes in, and kept for `LIFETIME` seconds
of the injected clock; a name that does not resolve counts as no address (the bounce is then
judged by the company's networks alone), said once in the log until it resolves again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

LIFETIME = 300.0  # seconds a resolved (or failed) name is kept: a relay's address rarely moves
FAILED_LIFETIME = 60.0  # a name that failed is asked again sooner: the resolver may be back
WAIT = 5.0  # seconds a bounce waits for the resolver at most; a later one finds the answer kept


def relay_host(relay: str | None) -> str | None:
    """The host of `[mail] relay` (HOST:PORT, [IPv6]:PORT), None for a capture directory."""
    if not relay or relay.startswith("maildir:"):
        return None
    host = relay.rpartition(":")[0] if ":" in relay else relay
    return host.strip("[]") or None


def normal(address: str) -> str | None:
    """An IP address in one spelling (an IPv4-mapped IPv6 one as its IPv4), None for a name."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


class RelayAddresses:
    """The relay host's addresses, resolved when asked and kept for a while."""

    def __init__(self, relay: str | None, clock: Callable[[], float]) -> None:
        self.host = relay_host(relay)
        self.clock = clock
        literal = normal(self.host) if self.host else None
        # An address as configured needs no resolver; a capture directory has no host at all.
        self._fixed = frozenset({literal}) if literal else frozenset() if self.host is None else None
        self._known: frozenset[str] = frozenset()
        self._until = 0.0
        self._failing = False
        self._asking: asyncio.Future[frozenset[str]] | None = None

    async def current(self) -> frozenset[str]:
        """The addresses now: those kept, or the name resolved again once they are older than their
        lifetime. Never raises: a resolver's failure or silence is no address."""
        if self._fixed is not None:
            return self._fixed
        if 0 < self._until - self.clock() <= LIFETIME:  # a clock stepped back keeps nothing longer
            return self._known
        if self._asking is None or self._asking.done():  # one lookup however many bounces wait for it
            self._asking = asyncio.ensure_future(self._resolve())
        try:
            return await asyncio.wait_for(asyncio.shield(self._asking), WAIT)
        except TimeoutError:
            return self._known

    async def _resolve(self) -> frozenset[str]:
        assert self.host is not None
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(self.host, None, type=socket.SOCK_STREAM)
        except Exception as exc:  # socket.gaierror, a name IDNA cannot encode: no address, never a fault
            if not self._failing:
                log.warning("answerbounce.relay_unresolved", relay=self.host, error=str(exc))
            self._failing = True
            self._known, self._until = frozenset(), self.clock() + FAILED_LIFETIME
            return self._known
        found = frozenset(a for info in infos if (a := normal(str(info[4][0]))) is not None)
        if self._failing:
            log.info("answerbounce.relay_resolved", relay=self.host, addresses=sorted(found))
        self._failing = False
        self._known, self._until = found, self.clock() + LIFETIME
        return found
