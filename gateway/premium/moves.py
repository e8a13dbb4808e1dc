"""Premium SMS whose service moved to another account (`premium set --account`) before they were
mailed: the held ones and the late parts of one mailed before the move.

A vote kept until its service's address confirms was mailed to nobody, so no client has taken it:
it is the client's that gets it, the account the service is bound to when the address confirms.
Left with the account it came in for, it was mailed to the new client's address, billed to the
earlier account, and the new client's answer was refused as one to another company's vote, while
the earlier client never had its answer address: the answer the phone paid for could never go. So
on forwarding it is re-bound to the service's account: its row when its month is still to be
billed, else as a correction booked now (`corrections.move`), as every party change of a billed
month is. The answer then follows that party (`answers.answer` reads it through
`corrections.owner`).

The late parts of an SMS are the same SMS: they go to the address its first parts went to, with
their answer address, billed to the account those are (`handlers._late_parts`), however the
service moved since. Those of an SMS still kept are kept with it, and move with it.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.config import Config
from gateway.premium import corrections
from gateway.premium.repo import PremiumMo, PremiumRepo, Service
from gateway.store.db import Store


def first_address(r: PremiumRepo, first: PremiumMo, service: Service) -> str:
    """The address the first parts of a long SMS were mailed to: as the outbox recorded it, else
    the address the service had for their account (`as_it_was`, kept by a move), else its own."""
    mailed = r.mailed_to(first.mo_id)
    if mailed is not None:
        return mailed
    if first.account_id is not None and first.account_id != service.account_id:
        earlier = r.as_it_was(service, first.account_id, first.received_at)
        if earlier is not None:
            return earlier.email
    return service.email


def moved_away(first: PremiumMo | None, service: Service) -> bool:
    """Whether the first parts of an SMS (`first`, as its corrections leave it) were mailed, and
    are another account's than the one its service is bound to now: mailed before a move.

    First parts still kept (`awaiting`) stay bound to the account they came in for only until the
    address confirms and `kept_to` takes them along: their late parts are kept with them, and go
    where they go, not at once to the address that has not confirmed."""
    return (
        first is not None
        and first.state != "awaiting"
        and first.account_id is not None
        and first.account_id != service.account_id
    )


class Kept(NamedTuple):
    """Where a kept SMS is mailed, and what a move did to it: `did` in full for the operator (`mo
    list`), `told` for its row's note, which the billing file of the company whose row it is shows
    (None both when nothing moved)."""

    address: str
    did: str | None = None
    told: str | None = None


def kept_to(store: Store, cfg: Config, pmo: PremiumMo, service: Service) -> Kept:
    """Once the service's address confirmed: where its kept SMS `pmo` is mailed, after re-binding
    it to the service's account if it moved since the SMS came.

    Neither company is told the other's account name (`correctionnotes`): the one it leaves reads
    that it moved to another account, the one it goes to that it moved here from another."""
    r = PremiumRepo(store.db, store.clock)
    first = r.first_of(pmo.id)
    first = corrections.owner(r, first) if first is not None else None
    if moved_away(first, service):
        assert first is not None
        return Kept(first_address(r, first, service))
    current = corrections.owner(r, pmo)
    if current.account_id is None or current.account_id == service.account_id:
        return Kept(service.email)
    old, new = r.account_name(current.account_id), r.account_name(service.account_id)
    service_ = f"premium service {service.password}"
    did = f"kept for account {old}, billed to account {new}: {service.password} moved there before "
    did += "it was mailed"
    gone = f"billed to it: {service_} moved there before it was mailed"
    came = f"billed to this account: {service_} moved here before it was mailed"
    if corrections.move(store, cfg, pmo, service, "mailed", did, (gone, came)) is None:
        r.rebind_mo(pmo.id, service.account_id)
        # The row is the new account's now, and its billing file shows the note should the mail fail.
        return Kept(service.email, did, f"kept for another account, {came}")
    # The row stays the billed account's, as billed; the correction's lines say the rest.
    return Kept(service.email, did, f"{service_} moved to another account before it was mailed")


def kept_count(r: PremiumRepo, service: Service) -> int:
    """The service's SMS kept until its address confirms that a move now takes along (`kept_to`):
    all but the late parts of an SMS mailed before, which stay with it."""
    return int(
        r.conn.execute(
            "SELECT COUNT(*) FROM premium_mo p LEFT JOIN premium_mo f ON f.id = p.follows"
            " WHERE p.service_id = ? AND p.state = 'awaiting' AND (f.id IS NULL OR f.state = 'awaiting')",
            (service.id,),
        ).fetchone()[0]
    )
