"""What a reply pool does to the numbers accounts send from, as every tool tells it.

R-3.2 gives each (user, phone) conversation its own originating number from `[replies] pool`, so
that a phone's answer reaches the user it answers; R-1.11's "the account's configured sender"
yields to that for a number sender: the SMS goes out from a pool number (`conversations.opening`,
`on_accept`). An alphanumeric sender cannot be answered and is sent as it is. `account set` said
only "updated", `account show` listed the sender and `check-config` said the account "sends from"
it, while every SMS went from the pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config


def pool_sends(cfg: Config, sender: str | None) -> bool:
    """Whether SMS of an account with `sender` (None: `[gateway] default_sender`) go from the pool."""
    from gateway.configbase import is_number_sender

    return bool(cfg.replies.pool) and is_number_sender(sender or cfg.gateway.default_sender)


UNUSED = "not used to send while [replies] pool is set: each conversation goes from its own pool number"


def pool_note(cfg: Config, sender: str | None, *, accounts: int = 1) -> str | None:
    """`account set`'s note on a sender the pool stands in for, or None; check-config's, of the
    `accounts` (how many) that send from it."""
    if not pool_sends(cfg, sender):
        return None
    number = sender or f"[gateway] default_sender {cfg.gateway.default_sender}"
    whose = "the account's" if accounts == 1 else "their"
    return (
        f"[replies] pool is set: {whose} SMS go out from the pool's numbers, not from {number}"
        " (each conversation with a phone from its own number, so that its answers reach their user)"
    )
