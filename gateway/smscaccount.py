"""Which links may name one `smsc_account`: binds of one SMSC account, as `receipt_siblings` takes them.

Links naming the same account are siblings: a receipt that comes by one is matched to SMS sent by the
others, and the rest of a long SMS leaves by another of them under the first parts' reference
(`gateway.linkchoice`). An SMPP link and a CIMD2 link, or two logins, named one account by mistake were
taken without a word: a long SMS then left partly by one SMSC and partly by another under one
reference, which no phone joins. An account's binds may go to several hosts or ports (the reason the
key exists), but they speak one protocol and log in as one system_id.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.configbase import quoted
from gateway.configlinks import SmscSection


def _differs(first: SmscSection, other: SmscSection) -> str | None:
    if first.type != other.type:
        return f"{quoted(first.name)} is {first.type} and {quoted(other.name)} is {other.type}"
    if first.system_id != other.system_id:
        return (
            f"{quoted(first.name)} logs in as system_id {quoted(first.system_id)} and {quoted(other.name)}"
            f" as {quoted(other.system_id)}"
        )
    return None


def account_refusal(links: Sequence[SmscSection]) -> str | None:
    """Why two links naming one `smsc_account` cannot be binds of one SMSC account, or None."""
    first: dict[str, SmscSection] = {}
    for link in links:
        if not link.smsc_account:
            continue
        seen = first.setdefault(link.smsc_account, link)
        if (why := _differs(seen, link)) is not None:
            return (
                f"[[smsc]] smsc_account: links {quoted(seen.name)} and {quoted(link.name)} both name"
                f" {quoted(link.smsc_account)}, but {why}: links sharing an SMSC account are binds of one"
                " SMSC (one type and one system_id; host and port may differ), whose receipts and long SMS"
                " they share; give each SMSC its own smsc_account"
            )
    return None
