"""A client's address as the gateway counts, logs and trusts it, and the sockets a listen address
stands for.

A listen address of "::" takes both stacks, as the kernel's default and Postfix's
`inet_protocols = all` do: it is bound as two sockets, 0.0.0.0 and :: (IPv6 only), so that an IPv4
client arrives as its IPv4 address. A dual-stack socket would hand it over as ::ffff:a.b.c.d, which
relay networks, limits, lockouts, logs and `[web] trusted_proxies` would each have to unmap; the
panel unmaps anyway (`unmapped`), should such a peer reach it by another way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IPV4_ANY = "0.0.0.0"


def unmapped(host: str) -> str:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) as the IPv4 address it is; anything else as it
    came (a name, a zone-scoped address, an empty string)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return host


def is_ipv6_any(host: str) -> bool:
    """Whether a listen host is the IPv6 wildcard (written "::" or any other spelling of it)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.version == 6 and ip.is_unspecified


def listen_hosts(host: str) -> list[str]:
    """The addresses a listen host is bound as: "::" as 0.0.0.0 and :: (both stacks), else itself."""
    return [IPV4_ANY, host] if is_ipv6_any(host) else [host]


def bind_all(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for host:port, one per address (`listen_hosts`, then what a name resolves
    to), each IPv6 one IPv6-only; port 0: the first socket picks the port, the others take it too,
    so that both stacks of "::" answer on one port."""
    sockets: list[socket.socket] = []
    try:
        for name in listen_hosts(host):
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            for family, kind, proto, _name, addr in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((addr[0], port, *addr[2:]))
                port = port or sock.getsockname()[1]
                sock.listen(backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class TrustedProxies:
    """`[web] trusted_proxies` compared as addresses, not as strings: "::1" is "0:0::1", and a
    proxy written or arriving as ::ffff:127.0.0.1 is 127.0.0.1."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(unmapped(e), strict=False) for e in entries]

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        try:
            ip = ipaddress.ip_address(unmapped(host))
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def entries(self) -> list[str]:
        """As uvicorn's ProxyHeadersMiddleware takes them (networks, each unmapped)."""
        return [str(net) for net in self.networks]


def server_address(host: str, port: int) -> tuple[str | list[str], int]:
    """host and port as `loop.create_server` takes them, which binds each of a list of hosts (an
    IPv6 one IPv6-only). Port 0 on "::": a port free on both stacks, found by binding both and let go
    at once (only tests ask the system for a port; a config that listens gives one)."""
    if not is_ipv6_any(host):
        return host, port
    if port == 0:
        probe = bind_all(host, 0, 1)
        port = probe[0].getsockname()[1]
        for sock in probe:
            sock.close()
    return listen_hosts(host), port
