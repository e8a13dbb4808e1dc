"""Who may send through the relay port: trusted networks plus the envelope sender ACL.

Pure decisions over rows the store hands in, so that they are tested without a database. An IP
address alone proves nothing about the person, and a `From:` header proves nothing at all: the
relay port needs both a trusted client network and an envelope sender that is a user of the
account owning that network (SPEC R-2.1 b).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=1024)
def _net(cidr: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def trusted_accounts(client_ip: str | None, networks: Iterable[tuple[int, str]]) -> set[int]:
    """Accounts whose trusted networks contain the client's address."""
    if not client_ip:
        return set()
    try:
        addr = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return set()
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    found = set()
    for account_id, cidr in networks:
        net = _net(cidr)
        if net is not None and addr.version == net.version and addr in net:
            found.add(account_id)
    return found


@dataclass(frozen=True, slots=True)
class RelayVerdict:
    allowed: bool
    reason: str  # for the log; the SMTP reply never says which check failed


def relay_sender_allowed(sender_account_id: int | None, suspended: bool, trusted: set[int]) -> RelayVerdict:
    if not trusted:
        return RelayVerdict(False, "client network not trusted")
    if sender_account_id is None:
        return RelayVerdict(False, "envelope sender is not a user")
    if sender_account_id not in trusted:
        return RelayVerdict(False, "envelope sender belongs to another account than the client network")
    if suspended:
        return RelayVerdict(False, "account suspended")
    return RelayVerdict(True, "trusted network and sender on the ACL")
