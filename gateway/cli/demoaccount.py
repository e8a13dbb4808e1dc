"""The walkthrough's demo account left open once a link goes to an operator: check-config's warning
and the start's.

The README's "to use a real operator" step changes the link and the simulator only. The shipped
config's account "demo" then still relays from 127.0.0.0/8 without a login, so any program on the
machine sends paid SMS as demo@example.com, and nothing said so. The account lives in the database
after the first start: deleting the `[[account]]` block leaves it there, hence the stored accounts
are read too (read-only, as every stored warning of `gateway.cli.stored`). A suspended account sends
nothing and is not warned of.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config


def is_example(domain: str) -> bool:
    """A domain of RFC 2606's example.com, the walkthrough's and install-service's placeholder."""
    domain = domain.lower().rstrip(".")
    return domain == "example.com" or domain.endswith(".example.com")


def _loopback(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).is_loopback
    except ValueError:
        return False


def _accounts(cfg: Config) -> dict[str, tuple[set[str], set[str]]]:
    """name -> (users, relay networks) of the stored accounts not suspended, and of the blocks of
    accounts not stored yet. A block only makes a missing account (`adminrules.seed_accounts`): once
    stored, what the admin removed from it stays removed, and the block's lists would be said of it
    still after `account set --remove-network` and `user remove`."""
    from gateway.cli.stored import read_rows

    found: dict[str, tuple[set[str], set[str]]] = {}
    stored = {name for (name,) in read_rows(cfg.db_path, _STORED)}
    for seed in cfg.account:
        if seed.name not in stored:
            found.setdefault(seed.name, (set(), set()))
            found[seed.name][0].update(seed.users)
            found[seed.name][1].update(seed.relay_networks)
    for name, email in read_rows(cfg.db_path, _USERS):
        found.setdefault(name, (set(), set()))[0].add(email)
    for name, cidr in read_rows(cfg.db_path, _NETWORKS):
        found.setdefault(name, (set(), set()))[1].add(cidr)
    return found


_STORED = "SELECT name FROM accounts"
_USERS = (
    "SELECT a.name, u.email FROM users u JOIN accounts a ON a.id = u.account_id WHERE a.suspended_at IS NULL"
)
_NETWORKS = (
    "SELECT a.name, n.cidr FROM account_networks n JOIN accounts a ON a.id = n.account_id"
    " WHERE a.suspended_at IS NULL"
)


def demo_doubts(cfg: Config) -> list[str]:
    """What is left of the walkthrough while a link goes to an operator (any link but one to the
    enabled simulator, `gateway.configdoubts.operator_links`, a tunnel on loopback too): an account
    relaying from loopback without a login, users and domains at example.com."""
    from gateway.configdoubts import operator_links

    if not operator_links(cfg):
        return []
    lines = [
        f"[gateway] domains: {domain} is an example domain, and a link goes to an operator: set the"
        " domain your users mail to (NUMBER@DOMAIN)"
        for domain in cfg.gateway.domains
        if is_example(domain)
    ]
    for name, (users, networks) in sorted(_accounts(cfg).items()):
        loop = sorted(cidr for cidr in networks if _loopback(cidr))
        example = sorted(user for user in users if is_example(user.rpartition("@")[2]))
        if not loop and not example:
            continue
        what, word = [], shlex.quote(name)
        if loop:
            what.append(f"relays from {', '.join(loop)} without a login (any program here sends paid SMS)")
        if example:
            what.append(f"has the example user{'s' * (len(example) > 1)} {', '.join(example)}")
        steps = [f"`smsgw account set {word} --remove-network {cidr}`" for cidr in loop]
        steps += [f"`smsgw user remove {user}`" for user in example]
        lines.append(
            f"account {name} {' and '.join(what)}, and a link goes to an operator: {', '.join(steps)}"
            f" (or `smsgw account suspend {word}`), and delete its [[account]] block if the config has one"
        )
    return lines
