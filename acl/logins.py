"""Who a failed login is counted against, and how a login may be shown.

A client is counted by its address (an IPv6 host by its /64), a login by its casefolded text.
A login is shown as typed only when it names a user: people type their password into the
user-name field, so anything else is masked. `smsgw auth unlock` names what to unlock in the
same terms.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets

from acl.peer import client_address

ALL = "*"  # an unlock of every counter

# (kind, address, login): kind "pair" has both, "address" only the address, "login" only the login.
Key = tuple[str, str, str]

# The longest login a counter keeps as typed: no address is longer (RFC 5321 4.5.3.1: a 64-octet
# local part, `@` and a 255-octet domain). A longer one cannot name a user; it is counted under a
# digest of itself (`login_key`), since the table caps its keys in number, not in size: 60 KB
# "logins" held about 100 KB each for the 24 hours a counter is remembered.
MAX_LOGIN = 320


# Random per process: a digest correlates the attempts of one run, and cannot be looked up in a
# table of digests of common passwords made elsewhere (or from an earlier run's logs).
_MASK_KEY = secrets.token_bytes(32)


@functools.lru_cache(maxsize=1024)
def client_key(ip: str | None) -> str:
    """The unit a client is counted by: its IPv4 address, or its /64 (one host usually holds a whole /64).

    Kept per address (bounded, so a flood of new addresses costs only what each did before): parsing
    and writing it back with `ipaddress` cost some 31 k instructions, at every connection a relay's
    few MTAs open from the same addresses again and again."""
    if not ip:
        return "?"
    addr = client_address(ip)
    if addr is None:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def login_key(login: str) -> str:
    """Logins are email addresses, compared without case: `Anna@` and `anna@` are one target.

    One longer than `MAX_LOGIN` becomes a fixed-size digest of itself: still a target of its own
    (its pair and login counters work as any other's), but never more than a few dozen bytes."""
    key = login.strip().casefold()
    if len(key) <= MAX_LOGIN:
        return key
    digest = hmac.new(_MASK_KEY, key.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return f"[long login #{digest[:32]}]"


def masked_login(login: str) -> str:
    """A stand-in for a login that names no user, for logs and the status file.

    People type their password into the user-name field, and `@` is as common in passwords as
    in addresses, so nothing about the text tells the two apart; only finding the user does.
    """
    digest = hmac.new(_MASK_KEY, login_key(login).encode("utf-8", "surrogateescape"), hashlib.sha256)
    return f"[unknown login #{digest.hexdigest()[:12]}]"


def shown_login(login: str, known: bool) -> str:
    """The login as typed when it names a user (`known`), else its masked stand-in."""
    return login if known else masked_login(login)


def unlock_target(text: str) -> str:
    """What `smsgw auth unlock` stores: `*`, a login (casefolded) or an address's counting unit.

    Raises ValueError for anything else, so a typo is said at once instead of unlocking nothing.
    """
    text = text.strip()
    if text == ALL:
        return ALL
    if "@" in text:
        return login_key(text)
    if client_address(text) is None:
        raise ValueError(
            f"{text!r} is neither an IP address nor a login (e.g. 192.0.2.7 or anna@example.com)"
        )
    return client_key(text)  # an IPv6 address stands for its /64, as it is counted


def shown_target(target: str) -> str:
    """A stored unlock target as the CLI echoes it to the admin who typed it (the daemon's log
    masks a login that names no user)."""
    return target


def matches(key: Key, target: str) -> bool:
    if target == ALL:
        return True
    _kind, address, login = key
    if "@" in target:
        return login == target
    return address == target
