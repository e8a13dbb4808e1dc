"""The parts of an SMS whose submit the SMSC has not answered yet, and since when the phone may have them:
what an answer that overtakes that answer waits for (`reached.unanswered`, `waiting`).

A part counts from when its link wrote its submit (`gateway.handoffs`, the running dispatcher's memory),
not from its claim: claimed ahead of a full window, or held in its link for its phone's second, it may
wait seconds before it goes. One claimed and not written yet is not on the phone, unless an earlier submit
of it may be (its note says so: then from the first of those). One waiting to go again after its submit
went unanswered (a lost session, a time-out, a crash) holds an answer only within `wait` of its last
submit: its re-send may still be taken and say the phone has it; past that, nothing the wait can learn
says so. With no dispatcher here (after a restart nothing is known of the last run's hand-offs) the claim
times stand for them (`parts.claimed_at`, kept from the first submit that may have reached the phone, and
`parts.last_claimed_at`, the last claim's, a claim whose submit never went undone: a part sent again
just before a crash holds an answer within the wait of that re-send, not of its first send); claimed
before migration 71, the first claim stands for the last; before migration 69, an active part counts
from when it was due, and one waiting to go again not at all.
"""

from __future__ import annotations

import sqlite3

from gateway.handoffs import Handoffs
from gateway.store.partnotes import MAYBE_SENT_NOTES, maybe_sent_note

_PARTS = (
    "SELECT id, state = 'active', claimed_at, COALESCE(last_claimed_at, claimed_at), next_attempt_at,"
    f" COALESCE({maybe_sent_note()}, 0)"
    " FROM parts WHERE message_id = ? AND (state = 'active'"
    f" OR (state IN ('queued', 'deferred') AND {maybe_sent_note()}))"
)


def may_have_since(
    conn: sqlite3.Connection,
    message_id: int,
    at: float,
    wait: float,
    handed: Handoffs | None,
    *,
    claimed_unknown: float | None = None,
    claimed_ahead: bool = False,
) -> float | None:
    """Since when the phone may have the SMS `message_id` by a part whose submit is unanswered, as of
    `at`; None when no part's is. `claimed_unknown`: the last submit of a part waiting to go again
    claimed before migration 69 (None: it holds nothing). `claimed_ahead`: a part claimed and not handed
    yet counts too (as of now: it goes in a moment), for an answer already waiting for the SMS."""
    since: list[float] = []
    for part_id, active, claimed, last_claimed, due, noted in conn.execute(
        _PARTS, (*MAYBE_SENT_NOTES, message_id, *MAYBE_SENT_NOTES)
    ):
        known = handed.parts.get(part_id) if handed is not None else None
        first = known.first if known is not None and known.first is not None else claimed
        if active:
            if known is None and handed is not None and not noted:  # claimed, not written yet
                if claimed_ahead:
                    since.append(at)
                continue
            since.append(first if first is not None else due)
            continue
        last = known.last if known is not None else last_claimed if claimed is not None else claimed_unknown
        if last is not None and last > at - wait:
            since.append(first if first is not None else last)
    return min(since, default=None)
