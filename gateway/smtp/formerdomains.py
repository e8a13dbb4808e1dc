"""Mail to a domain that `[gateway] domains` no longer has, but that the gateway's own mail named.

An admin who renames the gateway's domain (drops sms.old.example, adds sms.new.example) leaves
addresses on the old one in people's mailboxes: the From of every answer mail of a conversation
(`+48601123456@sms.old.example`), a premium service's confirmation and answer addresses
(`confirm-…@`, `premium-…@`). A reply to one was refused at RCPT as relay spam is, `550 5.7.1 Relay
access denied`, and its writer could not tell that the gateway had only moved. Such a recipient now
hears that its domain is no longer served here and the address to write to instead: RFC 5321 3.4's
551 "User not local; please try <forward-path>", RFC 3463 X.1.6 "destination mailbox has moved".

Which domains those are is what the stored conversations name (`conversations.domain`), told once as
the process starts (`domainsserved`: read from the table only when a domain was dropped): the config is
never reloaded, and a dropped domain's conversations only go. The premium addresses are stored without
their domain, so their token alone tells them, on any domain; one the gateway never served hears only
that the address is not served here (it was told the domain is "no longer served by this gateway"), and
a removed service's token is refused as any unknown address (it was sent to its address on the new
domain, which then refused the mail at DATA as a removed service's).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

import structlog

from gateway import premium
from gateway.premium import queries
from gateway.smtp import domainsserved, replies

if TYPE_CHECKING:
    from gateway.smtp.gate import Gate
    from gateway.store.db import Store

log = structlog.get_logger(__name__)

MOVED = "551 5.1.6 <{}>: {} is no longer served by this gateway; please try <{}>"
NOT_HERE = "551 5.1.6 <{}>: not served here; please try <{}>"


def held_domains(store: Store, served: Iterable[str], *, keep: bool = False) -> frozenset[str]:
    """The domains outside `served` that stored conversations name; none when the database cannot
    say (a start goes on: such mail is then refused as any other relay). `keep`: the daemon's start,
    which reads the table if a domain was dropped and keeps what it found for the others."""
    conn = store.db.conn
    try:
        if not keep:
            return frozenset(domainsserved.held(lambda query: conn.execute(query).fetchall(), served))
        found, rows = domainsserved.at_start(conn, served, store.clock())
    except sqlite3.Error as exc:
        log.warning("smtp.former_domains_unread", error=repr(exc))
        return frozenset()
    if rows:
        _keep(store, rows)
    return frozenset(found)


def _keep(store: Store, rows: list[tuple[str, str]]) -> None:
    """The rows written through the store's writes, as every write of the daemon's; not kept, the next
    start reads the table again."""
    work = functools.partial(domainsserved.write, store.db.conn, rows)
    try:
        done = store.submit(work)
    except RuntimeError:  # no loop runs (a gate made outside the daemon): a write of its own
        with store.db.transaction():
            work()
        return
    done.add_done_callback(_kept)


def _kept(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and (error := done.exception()) is not None:
        log.warning("smtp.former_domains_unkept", error=repr(error))


def refusal(gate: Gate, local: str, domain: str, address: str) -> str:
    """RCPT's reply to `address`, whose `domain` is not one of `[gateway] domains`: the address to
    write to instead when the gateway's own mail named it, else the relay refusal."""
    domains = gate.config.gateway.domains
    if not domains:
        return replies.RELAY_DENIED.format(address)
    mailbox = address.strip().strip("<>").rpartition("@")[0]  # as written: a quoted number stays so
    answered = _premium_address(gate, local)
    if answered is False:  # a premium address no longer answered (or never): not to be sent on
        return replies.RELAY_DENIED.format(address)
    if domain in gate.former_domains:
        return MOVED.format(address, domain, f"{mailbox}@{domains[0]}")
    if answered:
        return NOT_HERE.format(address, f"{mailbox}@{domains[0]}")
    return replies.RELAY_DENIED.format(address)


def _premium_address(gate: Gate, local: str) -> bool | None:
    """Whether `local`, a premium answer or confirmation address, is still answered (its token is
    unguessable: on any domain, it is the gateway's own); None for any other address."""
    target = premium.target(local)
    if target is None:
        return None
    return queries.token_answered(gate.store.db.conn, target.kind, target.token)
