"""A client's address as the access rules read it: one parse for the relay networks
(`acl.accounts`), the lockout counts (`acl.logins`) and the hints that name the client's network.

A peer string may carry a zone id (fe80::1%eth0, which `ipaddress` refuses) or be an IPv4 client
of a dual-stack socket (::ffff:192.0.2.7): read as written, the first matched nothing and the
second was counted, trusted and named apart from the same client over IPv4.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(text: str | None) -> Address | None:
    """The address `text` names, without its zone id and with an IPv4-mapped IPv6 address as the
    IPv4 address it is; None for no address (a transport that is not TCP) or a string that is not one."""
    try:
        address = ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
