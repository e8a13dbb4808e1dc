"""A client's relay networks as typed: read, a typo refused, a width warned of.

The relay port takes mail from a listed network without a password, from any envelope sender on
the account's user list, so a network is as much a credential as a password: the CLI, the panel and
check-config read them all here.
"""

from __future__ import annotations

import ipaddress

from gateway.configbase import ConfigError

# The widest relay network a client may sensibly have, per address family: an IPv4 /8 is a big
# organisation's, an IPv6 /32 a whole provider's allocation (a site gets a /48).
WIDEST_PREFIX = {4: 8, 6: 32}


def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A relay network as typed. Host bits are dropped (10.0.0.1/8 trusts 10.0.0.0/8, and the CLI
    says so), except under a prefix shorter than `WIDEST_PREFIX` (/8, IPv6 /32): `198.51.100.7/0` is
    a typo for one host, and read as 0.0.0.0/0 it let the whole internet send as the account's users.
    An IPv4-mapped IPv6 network (::ffff:192.0.2.0/120) is refused with its IPv4 form."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ConfigError(f"not a network: {cidr!r} (use CIDR such as 10.0.0.0/8)") from exc
    address = cidr.strip().partition("/")[0]
    typed = ipaddress.ip_address(address)
    mapped = typed.ipv4_mapped if isinstance(typed, ipaddress.IPv6Address) else None
    if mapped is not None and net.prefixlen >= 96:
        # Client addresses are compared unmapped (an IPv4 client on a dual-stack listener is
        # 192.0.2.5, never ::ffff:192.0.2.5): stored, it would be listed as trusted and match nobody.
        ipv4 = ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}", strict=False)
        wide = ipv4.prefixlen < WIDEST_PREFIX[4] and mapped != ipv4.network_address
        raise ConfigError(
            f"{cidr.strip()!r} is an IPv4-mapped IPv6 network, which no client address is:"
            f" write {f'{mapped}/32' if wide else ipv4}"
        )
    if net.prefixlen < WIDEST_PREFIX[net.version] and typed != net.network_address:
        host = f"{address}/{net.max_prefixlen}"
        raise ConfigError(
            f"{cidr.strip()!r} would trust {net}, {net.num_addresses:,} addresses: did you mean {host}?"
        )
    return net


def wide_network_doubt(cidr: str) -> str | None:
    """Why a relay network is too wide to trust, or None. The relay port takes mail from a listed
    network without a password, from any envelope sender on the account's user list: with one as
    wide as 0.0.0.0/0 anyone on the internet sends SMS, and bills them, as that user."""
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None  # refused where it is read
    if net.prefixlen >= WIDEST_PREFIX[net.version]:  # 0.0.0.0/0 is the whole internet
        return None
    return (
        f"relay network {net} trusts {net.num_addresses:,} addresses: anyone there may send SMS"
        " without a password by giving a user's address as envelope sender; list the client's mail"
        " servers' networks"
    )
