"""Who may send through the relay port: trusted networks plus the envelope sender ACL.

Pure decisions over rows the store hands in, so that they are tested without a database. An IP
address alone proves nothing about the person, and a `From:` header proves nothing at all: the
relay port needs both a trusted client network and an envelope sender that is a user of the
account owning that network (SPEC R-2.1 b).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from acl.peer import client_address

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
U = TypeVar("U")


@lru_cache(maxsize=1024)
def _net(cidr: str) -> IPNetwork | None:
    try:
        # Without a zone id (refused since, `gateway.relaynets.network`): matched as the overlap
        # checks read it, the same addresses on every interface.
        address, slash, prefix = cidr.partition("/")
        return ipaddress.ip_network(address.partition("%")[0] + slash + prefix, strict=False)
    except ValueError:
        return None


def trusted_accounts(client_ip: str | None, networks: Iterable[tuple[int, str]]) -> set[int]:
    """Accounts whose trusted networks contain the client's address."""
    return set(holding_networks(client_ip, networks))


def holding_networks(client_ip: str | None, networks: Iterable[tuple[int, str]]) -> dict[int, int]:
    """Account -> the prefix length of its narrowest network holding the client's address (an
    IPv4-mapped IPv6 address read as its IPv4 form), for the accounts with one."""
    addr = client_address(client_ip)
    if addr is None:
        return {}
    best: dict[int, int] = {}
    for account_id, cidr in networks:
        net = _net(cidr.strip())
        if net is not None and addr.version == net.version and addr in net:
            best[account_id] = max(best.get(account_id, -1), net.prefixlen)
    return best


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


def outranked_reason(account: str, network: str, owners: str, narrower: str) -> str:
    """The log's reason when the client's address is in the sender's account's network, but another
    account's narrower one takes it (the narrowest network's accounts relay, since 0.2.19): "belongs
    to another account than the client network" read as if the admin had never listed it."""
    return (
        f"envelope sender's account {account} holds the client's address in {network}, but the narrower"
        f" relay network {narrower} of account {owners} takes it: mail from there is taken only from"
        f" users of {owners}"
    )


# BATV (bounce address tag validation), which a client's mail server may write into the envelope
# sender of every mail: `prvs=0123abcdef=sms@radio.example.org` (and Microsoft's `msprvs1=`),
# Barracuda's `btv1==0a1b2c3d4e5==sms@radio.example.org`. The tag changes daily.
_BATV = re.compile(r"(?:prvs=[0-9a-f]{10}=|msprvs1=[0-9a-z_-]+=|btv1==[0-9a-z]+==)(.+@[^@]+)", re.IGNORECASE)


def without_batv(address: str) -> str:
    """The address with a BATV tag taken off, else as given. The domain stays, so a tag gains a
    forger nothing (the same domain's plain address is as easy to write). SRS addresses are not
    read: anyone can write one naming any address in a domain of their own."""
    m = _BATV.fullmatch(address)
    return m.group(1) if m else address


def sender_user(address: str, find_user: Callable[[str], U | None]) -> tuple[U | None, str]:
    """The user an envelope sender names, and the sender as it is recorded: as received, or without
    the BATV tag its company's server wrote into it (a staff member's mail was refused as from a
    stranger, `prvs=0123abcdef=anna@acme.example`). `+tags` and SRS are not read: a user is one
    address, and an SRS address names whoever its writer likes."""
    user = find_user(address)
    if user is not None:
        return user, address
    if not address.isascii() and (ascii_form := idna_address(address)) is not None:
        # SMTPUTF8 lets a server write its domain in Unicode (jan@bücher.example); the ACL holds
        # the domain as DNS does (xn--bcher-kva.example), and the sender is recorded so: answers
        # and notices go back to that ASCII form, which every relay takes.
        user = find_user(ascii_form)
        return (user, ascii_form) if user is not None else (None, address)
    untagged = without_batv(address)
    if untagged == address:
        return None, address
    user = find_user(untagged)
    return (user, untagged) if user is not None else (None, address)


def idna_address(address: str) -> str | None:
    """`address` with a Unicode domain in its ASCII (IDNA) form, as DNS and the ACL hold it; None when
    the local part is not ASCII (no user has such an address) or the domain is no IDNA name."""
    local, _, domain = address.rpartition("@")
    if not local or not local.isascii() or not domain:
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return f"{local}@{ascii_domain}"


# What an admin may mean as "any": `*@acme.example` was taken as a user and then matched only a
# sender who wrote those very characters. `%` is SQL's and the old percent hack's.
_WILDCARDS = "*?%"
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# RFC 5322 dot-atom: what a local part is without quotes, the only kind a user's address has here.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
LOCAL_MAX, ADDRESS_MAX = 64, 254  # RFC 5321 4.5.3.1.1 and the 256-octet path less its < >


def _shown(address: str) -> str:
    """`address` quoted for an error, cut short: a 300-character one would fill the message."""
    return repr(address) if len(address) <= 80 else repr(address[:60] + "…")


def _codepoint(c: str) -> str:
    """A character of an address as an error names it: never the character itself, which may be a
    control or a direction mark (U+202E showed the rest of the message reversed)."""
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} {name}" if name else f"U+{ord(c):04X}"


def wildcards_in(address: str) -> str:
    """The wildcards an address holds, each once, as an error names them ("* %"); "" for none. One
    check for a user (`user_address_problem`) and a premium client's address (`premium add|set`), so
    that what one refuses the other does too."""
    return " ".join(dict.fromkeys(c for c in address if c in _WILDCARDS))


def user_address_problem(address: str) -> str | None:
    """Why `address` cannot be a user, or None: the relay matches an envelope sender to a user by
    the whole address, so a user is one mailbox's address, never a pattern or a domain. The one check
    of `user add` and the panel, so each says the cause alike: a bare "not an email address" left an
    admin guessing at a Polish letter, a Unicode domain or the length."""
    address = address.strip()
    local, _, domain = address.rpartition("@")
    shown = _shown(address)
    one = "each user is one address, of one mailbox: add each one that sends"
    if wild := wildcards_in(address):
        return f"{shown} has a wildcard ({wild}): no address matches a pattern here; {one}"
    if not local or not domain:
        return f"{shown} is not an email address (user@domain): {one}"
    if not _DOT_ATOM.fullmatch("".join(c if c.isascii() else "a" for c in local)):
        return f"{shown} is not an email address as it stands (user@domain: no display name, space or quotes)"
    if not local.isascii():
        letters = ", ".join(_codepoint(c) for c in dict.fromkeys(c for c in local if not c.isascii()))
        return (
            f"{shown} has letters outside ASCII before the @ ({letters}): mail servers without"
            " SMTPUTF8 cannot carry it; add the mailbox's address in plain letters (ł as l, ó as o, ...)"
        )
    if len(local) > LOCAL_MAX:
        return f"{shown}: the part before the @ has {len(local)} characters, mail allows at most {LOCAL_MAX}"
    if len(address) > ADDRESS_MAX:
        return f"{shown} has {len(address)} characters, mail allows an address of at most {ADDRESS_MAX}"
    if domain.startswith("["):
        return f"{shown} names an IP address, not a mail domain: {one}"
    if not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        if domain.endswith(".") and all(_LABEL.fullmatch(label) for label in domain[:-1].split(".")):
            # DNS's root dot ("example.com."): no envelope sender carries it, so no mail would match.
            return f"{shown}: a mail address has no dot at its end: add {local + '@' + domain[:-1]!r}"
        if not domain.isascii() and (ascii_form := idna_address(address)) is not None:
            return f"{shown}: add the domain in its ASCII form, as DNS holds it: {ascii_form!r}"
        return f"{shown}: {domain!r} is not a mail domain: {one}"
    if (untagged := without_batv(address)) != address:
        return (
            f"{shown} carries a BATV tag its mail server writes and changes daily;"
            f" add {untagged!r} (the relay reads the tag off)"
        )
    return None
