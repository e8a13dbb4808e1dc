"""Which links may name one `smsc_account`: binds of one SMSC account, as `receipt_siblings` takes them.

Links naming the same account are siblings: a receipt that comes by one is matched to SMS sent by the
others, and the rest of a long SMS leaves by another of them under the first parts' reference
(`gateway.linkchoice`). An SMPP link and a CIMD2 link named one account by mistake were taken without
a word: a long SMS then left partly by one SMSC and partly by another under one reference, which no
phone joins. Two protocols are two SMSCs: refused. An account's binds may go to several hosts or ports
(the reason the key exists), and may log in as several system_ids: an operator that gives one login
per bind (its bind limits are per login) and sends receipts on any of them is configured just so, and
the store's `dlr.other_link` hint tells the admin to write it. Two logins may as well be two accounts
named one by mistake, so that is said (`gateway.configdoubts`, at check-config and at start), not
refused: a config that ran would not start after an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.configbase import quoted
from gateway.configlinks import SmscSection


def _accounts(links: Sequence[SmscSection]) -> list[tuple[SmscSection, SmscSection]]:
    """(the first link naming an account, another naming it) for each later link naming one."""
    first: dict[str, SmscSection] = {}
    pairs = []
    for link in links:
        if link.smsc_account:
            seen = first.setdefault(link.smsc_account, link)
            if seen is not link:
                pairs.append((seen, link))
    return pairs


def account_refusal(links: Sequence[SmscSection]) -> str | None:
    """Why two links naming one `smsc_account` cannot be binds of one SMSC account, or None."""
    for seen, link in _accounts(links):
        if seen.type != link.type:
            return (
                f"[[smsc]] smsc_account: links {quoted(seen.name)} and {quoted(link.name)} both name"
                f" {quoted(link.smsc_account)}, but {quoted(seen.name)} is {seen.type} and"
                f" {quoted(link.name)} is {link.type}: links sharing an SMSC account are binds of one SMSC"
                " (one type; host, port and login may differ), whose receipts and long SMS they share;"
                " give each SMSC its own smsc_account"
            )
    return None


def account_doubts(links: Sequence[SmscSection]) -> list[str]:
    """A warning per link naming an `smsc_account` whose first link logs in as another system_id."""
    return [
        f"[[smsc]] smsc_account: links {quoted(seen.name)} and {quoted(link.name)} both name"
        f" {quoted(link.smsc_account)} but log in as system_id {quoted(seen.system_id)} and"
        f" {quoted(link.system_id)}: each one's receipts are matched to the other's SMS, and a long SMS's"
        " later parts may leave by either login under its first parts' reference; right if the SMSC"
        " takes both logins as one account (sends their receipts on either bind), else give each its"
        " own smsc_account"
        for seen, link in _accounts(links)
        if seen.type == link.type and seen.system_id != link.system_id
    ]
