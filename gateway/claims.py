"""The dispatcher's claim of due parts, as one store write: what a suspension or a STOP recorded
since the parts were queued stops is taken out before anything is handed to a link."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from gateway.store.db import ClaimedPart, Store
from gateway.store.settling import OPTED_OUT

__all__ = ["OPTED_OUT", "claimer"]

log = structlog.get_logger(__name__)


def claimer(
    store: Store, end: Callable[[list[ClaimedPart]], None], limit: int, now: float
) -> Callable[[], tuple[int, list[ClaimedPart]]]:
    """The claim to run as a store write: how many parts it took (held or opted-out ones too), and
    those to send. `end` ends the opted-out parts, all at once (each message settled once, after all
    its parts: ended one by one, the first settled its message while the others were still
    `active`, and the bounce said they were being sent), inside the same write."""

    def claim() -> tuple[int, list[ClaimedPart]]:
        parts = store.queue.claim_due(limit, now=now)
        taken = len(parts)
        if not parts:
            return taken, parts
        if store.policy.suspended_accounts():
            # A part queued again after its account's suspension (a retry of a part that was on
            # the wire then) is held now, as the suspension held the others.
            held = store.policy.hold_claimed([p.id for p in parts])
            if held:
                log.info("mt.suspended_held", parts=len(held))
                parts = [p for p in parts if p.id not in held]
        # A STOP that came after the mail was accepted ends every SMS still to go to that phone
        # bulk held for quiet hours, retries, parts queued behind a slow link. One look at
        # the cached list per claim, not one query per part.
        optouts = store.db.settings.optouts()
        opted_out = store.policy.is_opted_out if optouts is None else optouts.__contains__
        stopped = [p for p in parts if opted_out(p.destination)]
        stopped += _account_stopped(store, [p for p in parts if p not in stopped])
        if not stopped:
            return taken, parts
        end(stopped)
        log.info("mt.opted_out", parts=[part.id for part in stopped])
        return taken, [p for p in parts if p not in stopped]

    return claim


def _account_stopped(store: Store, parts: list[ClaimedPart]) -> list[ClaimedPart]:
    """Parts to a number their own account's admin listed since they were queued (migration 59):
    those stop as the shared list's do, and no other account's. Only SMS accepted before the entry:
    later mail the SMTP gate has judged, and a premium answer it let through (the phone voted after
    the entry, and paid for its answer) was ended here unsent. One indexed read per claim, and none
    while no account has such an entry."""
    conn = store.db.conn
    if not parts or conn.execute("SELECT 1 FROM account_optouts LIMIT 1").fetchone() is None:
        return []
    marks = ",".join("?" * len(parts))
    rows = conn.execute(
        "SELECT p.id FROM parts p JOIN account_optouts a"
        " ON a.account_id = p.account_id AND a.number = p.destination"
        " JOIN messages m ON m.id = p.message_id"
        f" WHERE p.id IN ({marks}) AND m.created_at < a.created_at",
        [p.id for p in parts],
    )
    ids = {r[0] for r in rows}
    return [p for p in parts if p.id in ids]
