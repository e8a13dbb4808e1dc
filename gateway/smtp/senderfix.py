"""What the admin can do about a sender the relay port refused, for the log line only.

The client's reply never names an account nor tells a user of another account from a stranger
(`replies.SENDER_NOT_HERE`): anyone in a customer's network could otherwise learn who is whose user.
The admin reading the log gets the account, its networks and the command, as `smsgw send` says it.
Apart from gateway/smtp/relay.py, which decides the refusal; this only words its remedy.
"""

from __future__ import annotations

import ipaddress
import shlex

from gateway.store.accountrecord import Account
from gateway.store.db import Store


def admin_fix(
    store: Store, client_ip: str | None, sender: str, account: Account | None, trusted: set[int]
) -> dict[str, object]:
    """The log line's fields: `account`, `networks` and `fix` for a user of an account the client's
    address is not in; `fix` alone (`user add`) for a stranger on a network of known accounts."""
    if client_ip is None:
        return {}
    if account is not None:
        if account.id in trusted:
            return {}  # allowed here but suspended: the reply says so
        return {
            "account": account.name,
            "networks": ", ".join(account.networks) or "none",
            "fix": f"smsgw account set {shlex.quote(account.name)} --add-network {host_cidr(client_ip)}",
        }
    if not trusted or not sender.isascii() or "@" not in sender:
        return {}  # a stranger's network, or no address a user could have
    names = sorted(store.accounts.account_by_id(account_id).name for account_id in trusted)
    target = shlex.quote(names[0]) if len(names) == 1 else "ACCOUNT"
    return {"fix": f"smsgw user add {shlex.quote(sender)} --account {target}"}


def host_cidr(client_ip: str) -> str:
    """The client's address as the one-host network `account set --add-network` takes."""
    try:
        host = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return client_ip
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
        host = host.ipv4_mapped
    return f"{host}/{host.max_prefixlen}"
