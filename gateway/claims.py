"""The dispatcher's claim of due parts, as one store write: what a suspension or a STOP recorded
since the parts were queued stops is taken out before anything is handed to a link."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from gateway.premium.queries import votes_answered
from gateway.store.admin import CANCELLED_BY_ADMIN
from gateway.store.adminstops import cancel_asked
from gateway.store.db import ClaimedPart, Store
from gateway.store.settling import OPTED_OUT

__all__ = ["CANCELLED_BY_ADMIN", "OPTED_OUT", "claimer", "stopped_claimed"]

log = structlog.get_logger(__name__)


def claimer(
    store: Store, end: Callable[[list[ClaimedPart], str, str], None], limit: int, now: float
) -> Callable[[], tuple[int, list[ClaimedPart]]]:
    """The claim to run as a store write: how many parts it took (held, opted-out or cancelled ones
    too), and those to send. `end(parts, state, reason)` ends the opted-out parts, all at once (each
    message settled once, after all its parts: ended one by one, the first settled its message while
    the others were still `active`, and the bounce said they were being sent), inside the same
    write; and apart from them those an admin's cancel marked while they were claimed before."""

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
        # bulk held for quiet hours, retries, parts queued behind a slow link.
        stopped, cancelled = stopped_claimed(store, parts)
        if cancelled:  # asked while it was claimed before, and put back to the queue since
            end(cancelled, "cancelled", CANCELLED_BY_ADMIN)
            log.info("mt.cancelled", parts=[part.id for part in cancelled])
        if stopped:
            end(stopped, "failed", OPTED_OUT)
            log.info("mt.opted_out", parts=[part.id for part in stopped])
        if not stopped and not cancelled:
            return taken, parts
        return taken, [p for p in parts if p not in stopped and p not in cancelled]

    return claim


def stopped_claimed(store: Store, parts: list[ClaimedPart]) -> tuple[list[ClaimedPart], list[ClaimedPart]]:
    """Of these claimed parts, (those to end as opted out, those an admin's cancel asked to end).
    At the claim, and again by the dispatcher for what it holds claimed when an admin's change
    comes (`gateway.suspensions`): the opt-out lists (shared, and the account's own) and a cancel
    reach a claimed part as a suspension does. One look at the cached list, not one query per part."""
    if not parts:
        return [], []
    optouts = store.db.settings.optouts()
    opted_out = store.policy.is_opted_out if optouts is None else optouts.__contains__
    stopped = [p for p in parts if opted_out(p.destination)]
    if stopped:
        stopped = _not_paid_for(store, stopped)
    stopped += _account_stopped(store, [p for p in parts if p not in stopped])
    asked = cancel_asked(store.db.conn, [p.id for p in parts if p not in stopped])
    return stopped, [p for p in parts if p.id in asked]


def _not_paid_for(store: Store, listed: list[ClaimedPart]) -> list[ClaimedPart]:
    """Of these parts to numbers on the shared list, those to end: all but a premium answer to a
    vote that came after the STOP, which the phone paid for since and the answer address let
    through (`premium.answers`); a STOP since that vote ends it as any other. Read only when a
    claimed part's number is listed, so an ordinary claim reads nothing more."""
    votes = votes_answered(store.db.conn, list({p.message_id for p in listed}))
    if not votes:
        return listed
    since = store.policy.opted_out_since
    return [p for p in listed if p.message_id not in votes or since(p.destination, votes[p.message_id])]


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
