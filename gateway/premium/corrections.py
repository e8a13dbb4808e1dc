"""A premium MO's party changed after its month was billed: booked when it happens, as a correction.

A month that was billed (recorded billed, or a file of it mailed) never changes who is paid: the
account and the operator hold its mailed files, and the scheduled run does not mail a month twice.
So when a premium MO of such a month becomes a client's after all (its first part, with the
password, came late) or stops being one (its service went before the address confirmed), its row
stays as billed and the move is booked now (table premium_corrections): a reversal for the party
billed and an entry for the new one, signed counts and money, both listed in the files of the
month it happened in, naming the SMS they correct. A month not billed yet has its row changed in
place: its bill is still to be written.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_reports import repo as billing
from billing_reports.monthly import Month, premium_status
from gateway.config import Config
from gateway.premium.repo import PremiumMo, PremiumRepo, Service
from gateway.store.db import Store


def billed_month(store: Store, cfg: Config, pmo: PremiumMo) -> Month | None:
    """The month the premium MO was billed in, if its bill went out; None while it is still to come."""
    month = Month.containing(pmo.received_at, ZoneInfo(cfg.gateway.timezone))
    return month if billing.billed(store.db.conn, str(month)) else None


def move(store: Store, cfg: Config, pmo: PremiumMo, to: Service | None, state: str, why: str) -> Month | None:
    """Book `pmo` as `to`'s (None: no service's), counted as a premium MO in `state`, if its month
    was billed; returns that month, or None (nothing booked: the caller changes the row itself)."""
    month = billed_month(store, cfg, pmo)
    if month is None:
        return None
    r = PremiumRepo(store.db, store.clock)
    current, was = owner(r, pmo), r.corrected_to(pmo.id)
    tz = ZoneInfo(cfg.gateway.timezone)
    when = datetime.fromtimestamp(pmo.received_at, tz)
    old, new = _party(r, current.account_id), _party(r, to.account_id if to else None)
    note = (
        f"correction of the premium SMS of {when:%Y-%m-%d %H:%M:%S} from {pmo.phone} (billed in {month}):"
        f" moved from {old} to {new}, {why}"
    )
    status = premium_status(state)
    billed_as = was[2] if was is not None else premium_status(pmo.state)
    r.book_correction(pmo, current.account_id, current.service_id, -1, billed_as, note)
    r.book_correction(pmo, to.account_id if to else None, to.id if to else None, 1, status, note)
    return month


def owner(r: PremiumRepo, pmo: PremiumMo) -> PremiumMo:
    """The premium MO as its latest correction left it: the service and account it now belongs to."""
    found = r.corrected_to(pmo.id)
    return pmo if found is None else replace(pmo, service_id=found[0], account_id=found[1])


def _party(r: PremiumRepo, account_id: int | None) -> str:
    return "no service" if account_id is None else f"account {r.account_name(account_id)}"
