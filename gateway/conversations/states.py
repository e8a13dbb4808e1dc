"""A conversation's state as its answers are matched (`reached.answered`), for `conversation list`
and the panel's Conversations page alike: the two said the same thing in two places before, and
the panel said nothing, so a company admin could not tell a conversation whose answers still
reach its user from one long closed or one whose SMS never reached the phone.

Reading it scans the phone's recent SMS (bounded: `reached.SCAN_LIMIT`), a read per conversation,
and for an open one the answer's own matching (`ConversationsRepo.match`) once per (phone, number):
the panel does it on its reader thread, off the event loop, for the rows it shows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway import accountrules
from gateway.config import Config
from gateway.conversations import reached
from gateway.conversations.pool import pool_set, shared_with
from gateway.conversations.repo import ConversationsRepo, gone
from gateway.conversations.rows import Conversation
from gateway.store.forwardsteps import window_start

# `listed`'s state of an open conversation whose pool number another account's live conversation
# with the phone holds too (the pool ran out): its answers go to the fallback address, not to its user.
SHARED = "shared"
# `listed`'s state of an open conversation whose phone got a newer SMS from the same number, of
# another user: an answer now goes to that SMS's sender, not to this conversation's user.
DISPLACED = "displaced"
# What `told` says of it: never whose newer SMS it was (a company admin would learn that another
# company, or which colleague, texts their customer); the operator's page lists that row too.
DISPLACED_TOLD = (
    "displaced: a newer SMS from this number takes its answers"
    " (to that SMS's sender, to the fallback address once its window has passed)"
)
# The same with no `[replies] fallback_address`: the answers past that window are only recorded, as
# `told` says of the others; promised "to the fallback address", the admin looked for a mail never sent.
DISPLACED_UNKEPT = (
    "displaced: a newer SMS from this number takes its answers"
    " (to that SMS's sender; once its window has passed, recorded only: no [replies] fallback_address)"
)


class _Reading(ConversationsRepo):
    """The repository's reads on a bare connection (the panel's reader thread, the CLI's store):
    `listed` asks the MO path's own `match` which conversation an answer now would reach, rather
    than a second copy of that rule that could come to say otherwise."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._reading = conn

    @property
    def conn(self) -> sqlite3.Connection:
        return self._reading


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
    state: str,
    c: Conversation,
    conn: sqlite3.Connection,
    fallback: str | None,
    now: float,
    *,
    operator: bool = True,
) -> str:
    """The state, and where the answers of a conversation whose user may no longer have them go
    (`ConversationsRepo.gone`: removed, moved to another account, the address added again).

    A company admin (`operator` False) is told "no longer a user of this account" whether the user
    left the gateway or moved to another account: told apart, the two said which of its former
    users another company has now. Of a shared number (`SHARED`) they are told only that its answers
    go to the operator, not that another company's conversation shares it. A `DISPLACED` one says
    only that a newer SMS's sender gets its answers, whoever its user is now: they do not get them."""
    if state == DISPLACED:
        return DISPLACED_TOLD if fallback else DISPLACED_UNKEPT
    why = None if state == "closed" else gone(conn, c, now)
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
    """Each row's `state`; `SHARED` for an open one on a pool number another account's live
    conversation with the phone holds too (`told` says so): both showed `open`, though neither
    user gets the phone's answers; `DISPLACED` for an open one whose phone's answer, were it to come
    now, `match` gives to another conversation on its number (a newer SMS from it reached the
    phone: with no pool, every user of a sender number; a pool number taken from a colleague):
    both showed `open`, though only the newer one's user gets the answers; or to none, the newer SMS's
    account's shorter window closed since (the fallback address gets them). One a colleague displaced
    is `DISPLACED` though another company shares the number: no answer is meant for it any more.
    `own`: the accounts' own reply windows in days (None: the config's)."""
    region = cfg.gateway.default_region
    pool = pool_set(tuple(cfg.replies.pool), region)
    window = cfg.replies.window_seconds
    reading = _Reading(conn)
    answers: dict[tuple[str, str], Conversation | None] = {}  # (phone, number) -> what `match` takes
    found = []
    for c in rows:
        account_days = own.get(c.account_id) if c.account_id is not None else None
        days = accountrules.reply_window_days(cfg, account_days)
        since = window_start(conn, now, days * 86400)  # a step forward of the clock within it not counted
        said = state(conn, c, since, now, region)
        if said == "open":
            key = (c.phone, c.number)
            if key not in answers:
                answers[key] = reading.match(c.phone, c.number, now, window, region)
            taker = answers[key]
            # None though this one is open: a newer SMS from its number reached the phone, and that
            # SMS's account's shorter window has closed since (`reached.answered`): the answer goes to
            # the fallback address, not to this user. Listed `open`, it seemed to await it.
            if taker is None:
                found.append(DISPLACED)
                continue
            displaced = taker.id != c.id
            # Another company's newer SMS on a pool number shares it (its answers go to the fallback
            # address, meant for either); a colleague's newer SMS displaced this one, shared or not:
            # listed "shared", the conversation a colleague had taken the number from seemed to
            # await answers it no longer gets.
            shares = not displaced or (taker.account_id != c.account_id and not _colleague_since(conn, c))
            if c.number in pool and shares and shared_with(conn, c, now, window, region):
                said = SHARED
            elif displaced:
                said = DISPLACED
        found.append(said)
    return found


def _colleague_since(conn: sqlite3.Connection, c: Conversation) -> bool:
    """Whether a user of `c`'s account texted its phone from its number after it."""
    row = conn.execute(
        "SELECT 1 FROM conversations WHERE phone = ? AND number = ? AND account_id IS ? AND id != ?"
        " AND last_mt_at > ? LIMIT 1",
        (c.phone, c.number, c.account_id, c.id, c.last_mt_at),
    ).fetchone()
    return row is not None
