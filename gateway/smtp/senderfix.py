"""What the admin can do about a sender the relay port refused, for the log line only.

The client's reply never names an account nor tells a user of another account from a stranger
(`replies.SENDER_NOT_HERE`): anyone in a customer's network could otherwise learn who is whose user.
The admin reading the log gets the account and its networks; the command, as `smsgw send` says it,
only for a client on some account's network (on none it is anyone: a user's address is no secret).
Apart from gateway/smtp/relay.py, which decides the refusal; this only words its remedy.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence

from acl.accounts import holding_networks, outranked_reason, user_address_problem
from acl.peer import client_address
from gateway.store.accountrecord import Account
from gateway.store.db import Store


def admin_fix(
    store: Store, client_ip: str | None, sender: str, account: Account | None, trusted: set[int]
) -> dict[str, object]:
    """The log line's fields: `account`, `networks` and `fix` for a user of an account the client's
    address is not in; `fix` alone (`user add`) for a stranger on a network of known accounts. When
    the address is in the account's network but another account's narrower one takes it, `reason`
    and `narrower` say so, and `fix` shares that network (`--shared`): a host of its own there
    would be refused, or carved out of the other account's. A fix is never one the CLI refuses.

    A client on no account's network gets no `fix`: it is anyone on the internet, and a user's
    address is no secret. The command handed to the admin reading the log trusted whoever wrote
    it in MAIL FROM, the forger, to relay as every user of that account without a password. On
    another account's network the client is a customer's known mail server, and the hint stays."""
    if client_ip is None:
        return {}
    if account is not None:
        if account.id in trusted:
            return {}  # allowed here but suspended: the reply says so
        name = shlex.quote(account.name)
        fields: dict[str, object] = {
            "account": account.name,
            "networks": ", ".join(account.networks) or "none",
        }
        if not trusted:
            return fields  # whose user was named, for the admin; no command that trusts the host
        others = [store.accounts.account_by_id(account_id) for account_id in sorted(trusted)]
        narrow = _narrowest(client_ip, [c for other in others for c in other.networks])
        own = _narrowest(client_ip, account.networks)
        if own is not None and narrow is not None:
            # 0.2.18 took the address for both; since the narrowest network wins, the admin's word
            # that one mail server serves both is another account's very network, `--shared`.
            owners = ", ".join(sorted(o.name for o in others))
            fields["reason"] = outranked_reason(account.name, own, owners, narrow)
            fields["narrower"] = f"{narrow} ({owners})"
            fields["fix"] = f"smsgw account set {name} --add-network {narrow} --shared"
            return fields
        host = host_cidr(client_ip)
        shared = " --shared" if narrow is not None and _same(narrow, host) else ""  # else refused
        fields["fix"] = f"smsgw account set {name} --add-network {host}{shared}"
        return fields
    if not trusted or user_address_problem(sender) is not None:
        # A stranger's network, or no address a user could have (an address literal, demo@[IPv6:::1],
        # was named in a `user add` that refuses it): the command `user add` would take, or none.
        return {}
    names = sorted(store.accounts.account_by_id(account_id).name for account_id in trusted)
    target = shlex.quote(names[0]) if len(names) == 1 else "ACCOUNT"
    return {"fix": f"smsgw user add {shlex.quote(sender)} --account {target}"}


def host_cidr(client_ip: str) -> str:
    """The client's address as the one-host network `account set --add-network` takes."""
    host = client_address(client_ip)
    if host is None:
        return client_ip
    return f"{host}/{host.max_prefixlen}"


def _narrowest(client_ip: str, cidrs: Sequence[str]) -> str | None:
    """The narrowest of `cidrs` holding the client's address, as a network, or None."""
    held = holding_networks(client_ip, enumerate(cidrs))
    if not held:
        return None
    index = max(held, key=lambda i: held[i])
    return str(ipaddress.ip_network(cidrs[index].strip(), strict=False))


def _same(cidr: str, other: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False) == ipaddress.ip_network(other, strict=False)
    except ValueError:
        return False
