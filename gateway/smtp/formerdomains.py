"""Mail to a domain that `[gateway] domains` no longer has, but that the gateway's own mail named.

An admin who renames the gateway's domain (drops sms.old.example, adds sms.new.example) leaves
addresses on the old one in people's mailboxes: the From of every answer mail of a conversation
(`+48601123456@sms.old.example`), a premium service's confirmation and answer addresses
(`confirm-…@`, `premium-…@`). A reply to one was refused at RCPT as relay spam is, `550 5.7.1 Relay
access denied`, and its writer could not tell that the gateway had only moved. Such a recipient now
hears that its domain is no longer served here and the address to write to instead: RFC 5321 3.4's
551 "User not local; please try <forward-path>", RFC 3463 X.1.6 "destination mailbox has moved".

Which domains those are is what the stored conversations name (`conversations.domain`), read once as
the process starts: the config is never reloaded, and a dropped domain's conversations only go. The
premium addresses are stored without their domain, so their token alone tells them, on any domain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

import structlog

from gateway import premium
from gateway.smtp import replies

if TYPE_CHECKING:
    from gateway.smtp.gate import Gate
    from gateway.store.db import Store

log = structlog.get_logger(__name__)

MOVED = "551 5.1.6 <{}>: {} is no longer served by this gateway; please try <{}>"


def held_domains(store: Store, served: Iterable[str]) -> frozenset[str]:
    """The domains outside `served` that stored conversations name; none when the database cannot
    say (a start goes on: such mail is then refused as any other relay)."""
    try:
        rows = store.db.conn.execute("SELECT DISTINCT domain FROM conversations").fetchall()
    except sqlite3.Error as exc:
        log.warning("smtp.former_domains_unread", error=repr(exc))
        return frozenset()
    ours = {domain.lower().rstrip(".") for domain in served}
    named = {str(domain).lower().rstrip(".") for (domain,) in rows if domain}
    return frozenset(named - ours)


def refusal(gate: Gate, local: str, domain: str, address: str) -> str:
    """RCPT's reply to `address`, whose `domain` is not one of `[gateway] domains`: the address to
    write to instead when the gateway's own mail named it, else the relay refusal."""
    domains = gate.config.gateway.domains
    if domains and (domain in gate.former_domains or _premium_address(gate, local)):
        mailbox = address.strip().strip("<>").rpartition("@")[0]  # as written: a quoted number stays so
        return MOVED.format(address, domain, f"{mailbox}@{domains[0]}")
    return replies.RELAY_DENIED.format(address)


def _premium_address(gate: Gate, local: str) -> bool:
    """Whether `local` is a premium answer or confirmation address the store knows (its token is
    unguessable: on any domain, it is the gateway's own)."""
    target = premium.target(local)
    return target is not None and premium.known(gate.store, target)
