"""A client's relay networks as typed: read, a typo refused, a width warned of, and which account
an address in two accounts' networks belongs to.

The relay port takes mail from a listed network without a password, from any envelope sender on
the account's user list, so a network is as much a credential as a password: the CLI, the panel and
check-config read them all here.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Iterable
from functools import lru_cache

from acl.accounts import holding_networks
from gateway.configbase import ConfigError

# The widest relay network a client may sensibly have, per address family: an IPv4 /8 is a big
# organisation's, an IPv6 /32 a whole provider's allocation (a site gets a /48).
WIDEST_PREFIX = {4: 8, 6: 32}


def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A relay network as typed. Host bits are dropped (10.0.0.1/8 trusts 10.0.0.0/8, and the CLI
    says so), except under a prefix shorter than `WIDEST_PREFIX` (/8, IPv6 /32): `198.51.100.7/0` is
    a typo for one host, and read as 0.0.0.0/0 it let the whole internet send as the account's users.
    An IPv4-mapped IPv6 network (::ffff:192.0.2.0/120), or an IPv4-compatible one (::192.0.2.0/120),
    is refused with its IPv4 form."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ConfigError(f"not a network: {cidr!r} (use CIDR such as 10.0.0.0/8)") from exc
    address, _, prefix = cidr.strip().partition("/")
    if "%" in address:
        # A client is matched by its address whatever interface it came in on; with the zone kept,
        # the overlap checks saw no other account's network in it ("each network is one account's"
        # got around with `2001:db8::%x/32`), and removing it by its plain form failed.
        bare = f"{address.partition('%')[0]}/{prefix}" if prefix else address.partition("%")[0]
        raise ConfigError(
            f"{cidr.strip()!r} has a zone id (%{address.partition('%')[2]}), which a relay network"
            f" cannot have: it holds the same addresses on every interface; write {bare}"
        )
    typed = ipaddress.ip_address(address)
    kind, mapped = _ipv4_in_ipv6(typed)
    if mapped is not None and net.prefixlen >= 96:
        # Client addresses are compared unmapped (an IPv4 client on a dual-stack listener is
        # 192.0.2.5, never ::ffff:192.0.2.5): stored, it would be listed as trusted and match nobody.
        ipv4 = ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}", strict=False)
        wide = ipv4.prefixlen < WIDEST_PREFIX[4] and mapped != ipv4.network_address
        raise ConfigError(
            f"{cidr.strip()!r} is an {kind} IPv6 network, which no client address is:"
            f" write {f'{mapped}/32' if wide else ipv4}"
        )
    if net.prefixlen < WIDEST_PREFIX[net.version] and typed != net.network_address:
        host = f"{address}/{net.max_prefixlen}"
        raise ConfigError(
            f"{cidr.strip()!r} would trust {net}, {net.num_addresses:,} addresses: did you mean {host}?"
        )
    return net


def _ipv4_in_ipv6(
    typed: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> tuple[str, ipaddress.IPv4Address | None]:
    """The IPv4 address an IPv6 one writes, and how: IPv4-mapped (::ffff:a.b.c.d), or the
    IPv4-compatible form RFC 4291 2.5.5.1 deprecated (::a.b.c.d, stored as ::7f00:7 for 127.0.0.7):
    `--relay-network ::127.0.0.7/128` was taken, shown as ::7f00:7/128, and matched no IPv4
    client. :: and ::1 are IPv6's own (unspecified, loopback), as is anything in 0.0.0.0/8."""
    if not isinstance(typed, ipaddress.IPv6Address):
        return "", None
    if typed.ipv4_mapped is not None:
        return "IPv4-mapped", typed.ipv4_mapped
    if int(typed) >> 32 == 0 and int(typed) >> 24 != 0:
        return "IPv4-compatible (deprecated)", ipaddress.IPv4Address(int(typed))
    return "", None


def ipv4_compatible(cidr: str) -> bool:
    """`cidr` is an IPv4-compatible IPv6 network (::127.0.0.7/128), which `network` refuses for that
    alone: the config's [[account]] takes it as before (an account stored with it keeps it), and
    `accountseed.seed_refusal` makes no new account of it. Anything `network` refuses otherwise is not."""
    address = cidr.strip().partition("/")[0]
    if "%" in address:  # a zone id: refused by `network` before this rule, and still
        return False
    try:
        net, typed = ipaddress.ip_network(cidr.strip(), strict=False), ipaddress.ip_address(address)
    except ValueError:
        return False
    kind, mapped = _ipv4_in_ipv6(typed)
    return mapped is not None and kind.startswith("IPv4-compatible") and net.prefixlen >= 96


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


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=1024)
def stored_network(cidr: str) -> IPNetwork | None:
    """A network as stored (older rows unchecked): None for one no rule reads."""
    try:
        return ipaddress.ip_network(_zoneless(cidr.strip()), strict=False)
    except ValueError:
        return None


def _zoneless(cidr: str) -> str:
    """A network stored before zone ids were refused, as the relay matches it: without its zone."""
    address, slash, prefix = cidr.partition("/")
    return address.partition("%")[0] + slash + prefix


def relay_owners(client_ip: str | None, networks: Iterable[tuple[int, str]]) -> set[int]:
    """The accounts a client address belongs to on the relay port: of those whose networks hold it,
    the ones with the narrowest such network. A network is a credential for every user of its
    account, so an address in two accounts' networks was trusted for both, and acme's mail server
    in beta's 127.0.0.0/29 sent on beta's bill as any of beta's users. The narrower network is the
    deliberate one (a host carved out of a company's wide range). The same network listed by two
    accounts stays both's: each of them named exactly it (one mail server serving two companies),
    which `account add` and `set` take only with `--shared`, and check-config and the start name."""
    best = holding_networks(client_ip, networks)
    narrowest = max(best.values(), default=None)
    return {account_id for account_id, prefix in best.items() if prefix == narrowest}


def overlapping(cidr: str, others: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(account, network) of `others` that share an address with `cidr`."""
    net = stored_network(cidr)
    if net is None:
        return []
    return [
        (name, other) for name, other in others if (o := stored_network(other)) is not None and _meet(net, o)
    ]


def carved_out(cidr: str, other_cidr: str) -> bool:
    """Whether `cidr` lies strictly inside `other_cidr`: the relay gives its addresses to the account
    that lists it (`relay_owners`), as `smsgw send` and the relay's log advise for a host in another
    account's wide range. Not so an equal or wider one, which `account add` and `set` refuse."""
    net, other = stored_network(cidr), stored_network(other_cidr)
    return net is not None and other is not None and _meet(net, other) and net.prefixlen > other.prefixlen


def overlaps(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(account, network, other account, other network) for each two networks of different
    accounts that share an address, each pair once, as check-config lists them; not a wider network
    over one its account lists too (shared with `--shared`), whose addresses stay its account's."""
    rows = sorted(set(rows))
    listed = {(name, stored_network(cidr)) for name, cidr in rows}
    found = []
    for i, (name, cidr) in enumerate(rows):
        for other, other_cidr in overlapping(cidr, rows[i + 1 :]):
            if other == name:
                continue
            # A narrower network the wider one's account lists too (`--shared`) is both's: the pair
            # of equal networks says so, and "no longer of" it would be untrue.
            nested = (name, other_cidr) if carved_out(other_cidr, cidr) else None
            nested = (other, cidr) if carved_out(cidr, other_cidr) else nested
            if nested is not None and (nested[0], stored_network(nested[1])) in listed:
                continue
            found.append((name, cidr, other, other_cidr))
    return found


def overlap_words(name: str, cidr: str, other: str, other_cidr: str) -> str:
    """What the relay does with the addresses two accounts' networks share (`relay_owners`), and the
    command for a mail server there that serves both: since 0.2.19 the wider network's users are
    refused there, where 0.2.18 took both."""
    net, wider = stored_network(cidr), stored_network(other_cidr)
    if net is None or wider is None or net.prefixlen == wider.prefixlen:
        return "a mail server there may send as users of both (as meant if it serves both: `--shared`)"
    owner, narrow, loser = (
        (name, cidr, other) if net.prefixlen > wider.prefixlen else (other, other_cidr, name)
    )
    return (
        f"mail from an address in {narrow} is taken only from users of account {owner}, no longer of"
        f" {loser}; if a mail server there serves both: `smsgw account set {loser!r} --add-network"
        f" {narrow} --shared`"
    )


def _meet(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and (a.subnet_of(b) or b.subnet_of(a))  # type: ignore[arg-type]


def network_refusal(
    conn: sqlite3.Connection,
    name: str,
    cidrs: list[str],
    option: str,
    shared: bool = False,
    cli: bool = False,
) -> tuple[str | None, list[str]]:
    """(why `cidrs`, about to be account `name`'s, are refused, or None; notes to say) by the rule
    that a relay network is one account's: one that is or holds another account's network is
    refused, naming it and the command that frees it; a host carved out of another account's wider
    network is taken, and said: the relay gives it to the narrower network's account alone
    (`relay_owners`). The CLI and the operator's panel say the same. `shared` (the CLI's `--shared`)
    takes a network equal to another account's: the admin says one mail server there serves both
    companies, which the relay honours (both's), as 0.2.18 did for any overlap. The panel offers no
    such switch (`cli` False): its refusal names the command that does."""
    if not cidrs:
        return None, []
    rows = conn.execute(
        "SELECT a.name, n.cidr FROM account_networks n JOIN accounts a ON a.id = n.account_id"
        " WHERE a.name != ? ORDER BY 1, 2",
        (name,),
    ).fetchall()
    notes = []
    for cidr in cidrs:
        for other, other_cidr in overlapping(cidr, rows):
            if carved_out(cidr, other_cidr):
                notes.append(
                    f"{cidr} is inside account {other}'s relay network {other_cidr}: mail from there"
                    f" is now taken only from users of account {name}, no longer of {other}"
                )
                continue
            equal = stored_network(cidr) == stored_network(other_cidr)
            if equal and shared:
                notes.append(
                    f"{cidr} is also account {other}'s relay network: a mail server there may send as"
                    f" users of both accounts ({other}, {name}), without a password"
                )
                continue
            held = "is" if equal else "holds"
            if not equal:
                share = ""
            elif cli:
                share = f"; if one mail server there serves both companies, give {option} {cidr} --shared"
            else:
                share = (
                    "; the panel shares no network between accounts: if one mail server there serves both"
                    f" companies, `smsgw account add {name!r} --relay-network {cidr} --shared` does"
                )
            return (
                f"{option} {cidr} {held} account {other}'s relay network {other_cidr}: a mail server there"
                f" could send as users of either account, without a password (each network is one"
                f" account's); give a network that leaves {other_cidr} out, or take it off {other} first"
                f" (`smsgw account set {other!r} --remove-network {other_cidr}`){share}"
            ), notes
    return None, notes
