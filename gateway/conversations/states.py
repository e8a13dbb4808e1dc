"""A conversation's state as its answers are matched (`reached.answered`), for `conversation list`
and the panel's Conversations page alike: the two said the same thing in two places before, and
the panel said nothing, so a company admin could not tell a conversation whose answers still
reach its user from one long closed or one whose SMS never reached the phone.

Reading it scans the phone's recent SMS (bounded: `reached.SCAN_LIMIT`), a read per conversation:
the panel does it on its reader thread, off the event loop, for the rows it shows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway import accountrules
from gateway.config import Config
from gateway.conversations import reached
from gateway.conversations.pool import pool_set, shared_with
from gateway.conversations.repo import gone
from gateway.conversations.rows import Conversation

# `listed`'s state of an open conversation whose pool number another account's live conversation
# with the phone holds too (the pool ran out): its answers go to the fallback address, not to its user.
SHARED = "shared"


def state(conn: sqlite3.Connection, c: Conversation, since: float, now: float, region: str) -> str:
    """`open` while an SMS of it that reached the phone went within the window (one held for quiet
    hours went later than its mail came); `unreached` when its SMS are known and none reached the
    phone (held, cancelled, expired, refused at submit, or undeliverable): an answer goes to it only
    while no other conversation on the number has an SMS that reached the phone; else `closed`."""
    if c.last_mt_at < since - reached.HOLD_SECONDS:
        return "closed"
    scan = reached.messages_to(conn, c.phone, since - reached.HOLD_SECONDS, now, [c.user_email])
    last = reached.last_reached(c, since, scan, region)
    if isinstance(last, reached.Sent) and last.sent_at is not None:
        return "open" if last.sent_at >= since else "closed"
    if c.last_mt_at < since:
        return "closed"
    return "unreached" if last is False else "open"


def told(
    state: str, c: Conversation, conn: sqlite3.Connection, fallback: str | None, *, operator: bool = True
) -> str:
    """The state, and where the answers of a conversation whose user may no longer have them go
    (`ConversationsRepo.gone`: removed, moved to another account, the address added again).

    A company admin (`operator` False) is told "no longer a user of this account" whether the user
    left the gateway or moved to another account: told apart, the two said which of its former
    users another company has now. Of a shared number (`SHARED`) they are told only that its answers
    go to the operator, not that another company's conversation shares it."""
    why = None if state == "closed" else gone(conn, c)
    elsewhere = "to the fallback address" if fallback else "recorded only (no [replies] fallback_address)"
    if state == SHARED:
        if why is None:
            if not operator:
                # Not "shared with another company's conversation": that told a company admin some
                # other company texts their customer. Where the answers go is what is theirs to know.
                return "open, answers go to the operator (reply pool ran out)"
            shared = "open, shared with another account's conversation (reply pool ran out)"
            return f"{shared}: answers {elsewhere}"
        state = "open"
    if why is None:
        return state
    left = (", who belongs to another account since", ", who is no longer a user of the gateway")
    if not operator and why.endswith(left):
        why = f"it answers {c.user_email}, who is no longer a user of this account"
    return f"{state}, answers {elsewhere}: {why.removeprefix('it answers ')}"


def listed(
    cfg: Config,
    conn: sqlite3.Connection,
    rows: Sequence[Conversation],
    own: dict[int, float | None],
    now: float,
) -> list[str]:
    """Each row's `state`, or `SHARED` for an open one on a pool number another account's live
    conversation with the phone holds too (`told` says so): both showed `open`, though neither
    user gets the phone's answers. `own`: the accounts' own reply windows in days (None: the config's)."""
    region = cfg.gateway.default_region
    pool = pool_set(tuple(cfg.replies.pool), region)
    found = []
    for c in rows:
        account_days = own.get(c.account_id) if c.account_id is not None else None
        days = accountrules.reply_window_days(cfg, account_days)
        said = state(conn, c, now - days * 86400, now, region)
        window = cfg.replies.window_seconds
        if said == "open" and c.number in pool and shared_with(conn, c, now, window, region):
            said = SHARED
        found.append(said)
    return found
