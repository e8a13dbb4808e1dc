"""Which sender each account sends from, said once an account: check-config's notes
(`gateway.cli.sendernotes`) and the start's log (R-1.11) read them alike.

A block only creates a missing account; most accounts are made with `smsgw account add` or the
panel, and an account set apart from its block sends from what is stored. The start said its
`config.sender_unanswerable` of the blocks alone: an account given `--sender ACME` was said by
check-config but not in the log of the daemon that sends from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

log = structlog.get_logger(__name__)

# Accounts a note names before "and N more": a thousand stored accounts sharing the default sender
# made one note line of over 12,000 characters, the first names lost to the terminal's scroll.
NAMED = 5
SAID_AT_START = 10  # senders said one a line in the start's log; check-config says them all
_NO_BLOCK = object()  # a stored account without an [[account]] block of its name


def merged(cfg: Config, stored: Mapping[str, str | None]) -> list[tuple[str, str | None]]:
    """(who, sender) for each account that sends, once each: a block and its stored account that
    agree are said as the block; where they differ, the stored sender is the one used (the block
    only creates a missing account, and `unapplied_seeds` names the difference)."""
    blocks: dict[str, str | None] = {seed.name: seed.sender or None for seed in cfg.account}
    said = [
        (f"account {name}", sender) for name, sender in blocks.items() if stored.get(name, sender) == sender
    ]
    said += [
        (f"stored account {name}", sender)
        for name, sender in stored.items()
        if blocks.get(name, _NO_BLOCK) != sender
    ]
    return said


def by_sender(accounts: list[tuple[str, str | None]]) -> dict[str | None, list[str]]:
    """Who sends from each sender, in the order first met."""
    sharing: dict[str | None, list[str]] = {}
    for who, sender in accounts:
        sharing.setdefault(sender, []).append(who)
    return sharing


def named(names: list[str]) -> str:
    """The first `NAMED` of `names`, and how many more; `account list` names them all."""
    if len(names) <= NAMED:
        return ", ".join(names)
    return f"{', '.join(names[:NAMED])} and {len(names) - NAMED} more"


def log_unanswerable(store: Store, cfg: Config) -> None:
    """`config.sender_unanswerable` for each sender phones cannot answer, once at the start, from the
    daemon's own store after the blocks were seeded into it."""
    from gateway.conversations import unanswerable

    stored = {account.name: account.sender or None for account in store.accounts.list_accounts()}
    # One line a sender, naming a few of its accounts, and a few senders, then how many more: 1,000
    # accounts each given a brand name were 1,002 warnings (110 KB) at every start.
    grouped = by_sender(merged(cfg, stored))
    lines = unanswerable(cfg, [(named(whos), sender) for sender, whos in grouped.items()])
    for line in lines[:SAID_AT_START]:
        log.warning("config.sender_unanswerable", detail=line)
    if len(lines) > SAID_AT_START:
        more = len(lines) - SAID_AT_START
        log.warning(
            "config.sender_unanswerable",
            detail=f"and {more} more sender(s) phones cannot answer: `smsgw check-config` lists them all",
        )
