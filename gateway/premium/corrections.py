"""A premium MO's party changed after its month was billed: booked when it happens, as a correction.

A month that was billed (recorded billed, or a file of it mailed) never changes who is paid: the
account and the operator hold its mailed files, and the scheduled run does not mail a month twice.
So when a premium MO of such a month becomes a client's after all (its first part, with the
password, came late) or stops being one (its service went before the address confirmed), its row
stays as billed and the move is booked now (table premium_corrections): a reversal for the party
billed and an entry for the new one, signed counts and money, both listed in the files of the
month it happened in, naming the SMS they correct. A month not billed yet has its row changed in
place: its bill is still to be written.

What became of such an SMS after its month was billed is booked alike when only its billing status
changes (`restate`): a vote billed `pending` while its client's address was unconfirmed is mailed
once it confirms (`delivered`), a vote billed `delivered` goes to the fallback when the relay
refuses the client's address for good (`failed`). Its party keeps it: the reversal and the entry are
both theirs (their money nets to nothing), the billed month lists the SMS as billed, and the status
counts of the two months add up to what became of it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_reports import repo as billing
from billing_reports.monthly import Month, premium_status
from gateway.config import Config
from gateway.premium import correctionnotes as notes
from gateway.premium.repo import PremiumMo, PremiumRepo, Service
from gateway.store.db import Clock, Db, Store


def billed_month(store: Store, cfg: Config, pmo: PremiumMo) -> Month | None:
    """The month the premium MO was billed in, if its bill went out; None while it is still to come."""
    month = Month.containing(billed_at(store.db.conn, pmo), ZoneInfo(cfg.gateway.timezone))
    return month if billing.billed(store.db.conn, str(month)) else None


def move(
    store: Store,
    cfg: Config,
    pmo: PremiumMo,
    to: Service | None,
    state: str,
    why: str,
    told: tuple[str, str] = ("", ""),
) -> Month | None:
    """Book `pmo` as `to`'s (None: no service's), counted as a premium MO in `state`, if its month
    was billed; returns that month, or None (nothing booked: the caller changes the row itself).

    Between two accounts, each company's line says the move in its own words, with `told`'s reason
    (the one it leaves's, the one it goes to's) for `why`, which names both; the operator reads the
    note in full (`correctionnotes`)."""
    month = billed_month(store, cfg, pmo)
    if month is None:
        return None
    r = PremiumRepo(store.db, store.clock)
    current = owner(r, pmo)
    to_account = to.account_id if to else None
    old, new = _party(r, current.account_id), _party(r, to_account)
    what = _what(store.db.conn, pmo, month, ZoneInfo(cfg.gateway.timezone))
    note = f"{what}: moved from {old} to {new}, {why}"
    gone = came = note
    if current.account_id is not None and to_account is not None and current.account_id != to_account:
        gone = notes.both(_said(f"{what}: moved to another account", told[0]), note)
        came = notes.both(_said(f"{what}: moved here from another account", told[1]), note)
    r.book_correction(pmo, current.account_id, current.service_id, -1, billed_status(r, pmo), gone)
    status = premium_status(state, claimed=to_account is not None)
    r.book_correction(pmo, to_account, to.id if to else None, 1, status, came)
    return month


def _said(moved: str, why: str) -> str:
    return f"{moved}, {why}" if why else moved


def restate(
    db: Db, clock: Clock, zone: ZoneInfo | None, pmo: PremiumMo, state: str, why: str
) -> Month | None:
    """`pmo` is now in `state` (its party unchanged): if its month was billed, a reversal of the
    status it was billed with and an entry under the new one, both for the party it belongs to, when
    the billing status changes; returns that month (the caller then keeps the row's note, which its
    billed line may give as its reason), or None when the month is still to be billed.

    Without it the billed month written again listed the SMS under its new status, not the bytes
    mailed, and no month counted the change. Runs where no config is at hand (the outbox worker's
    write of a refusal): `zone` None reads the month in every zone it may be in (`_billed_month_at`).
    """
    month = _billed_month_at(db.conn, billed_at(db.conn, pmo), zone)
    if month is None:
        return None
    r = PremiumRepo(db, clock)
    current = owner(r, pmo)
    was, status = billed_status(r, pmo), premium_status(state, claimed=current.account_id is not None)
    if status != was:
        party = _party(r, current.account_id)
        note = f"{_what(db.conn, pmo, month, zone)}: {was} then {status} for {party}, {why}"
        r.book_correction(pmo, current.account_id, current.service_id, -1, was, note)
        r.book_correction(pmo, current.account_id, current.service_id, 1, status, note)
    return month


def billed_at(conn: sqlite3.Connection, pmo: PremiumMo) -> float:
    """When `pmo` is billed, by billing's own rule (`billing_reports.repo.billed_at`): a long vote by
    its first part. By its join, a vote sent at 23:59:58 on the 31st and billed in October was taken
    for one of November, still to be billed, and its move changed a billed line in place."""
    row = conn.execute(
        f"SELECT {billing.billed_at('p')} FROM premium_mo p WHERE p.id = ?", (pmo.id,)
    ).fetchone()
    return pmo.received_at if row is None else float(row[0])


def billed_status(r: PremiumRepo, pmo: PremiumMo) -> str:
    """The billing status `pmo` is counted under now: its latest correction's, else its row's."""
    was = r.corrected_to(pmo.id)
    return was[2] if was is not None else premium_status(pmo.state, claimed=pmo.account_id is not None)


# The offsets from UTC of every zone there is lie within these (Kiribati +14, Baker Island -12).
_EAST, _WEST = 14 * 3600, 12 * 3600


def _billed_month_at(conn: sqlite3.Connection, received_at: float, zone: ZoneInfo | None) -> Month | None:
    """The month of `received_at` in `zone`, if it was billed. Without a zone: that of the machine's
    own zone if billed, else billed if the month it falls in under any zone was, so that a vote of a
    month's last or first hours billed under the gateway's zone is never taken for one still to be
    billed (booked in a month not billed yet, the correction's two lines merely show the change)."""
    if zone is not None:
        month = Month.containing(received_at, zone)
        return month if billing.billed(conn, str(month)) else None
    local = datetime.fromtimestamp(received_at).astimezone().tzinfo
    utc = ZoneInfo("UTC")
    for month in (
        Month.containing(received_at, local),  # type: ignore[arg-type]
        Month.containing(received_at - _WEST, utc),
        Month.containing(received_at + _EAST, utc),
    ):
        if billing.billed(conn, str(month)):
            return month
    return None


def _what(conn: sqlite3.Connection, pmo: PremiumMo, month: Month, zone: ZoneInfo | None) -> str:
    """The start of a correction's note: which SMS it corrects, by the time its billed line names,
    and the month that billed it."""
    when = datetime.fromtimestamp(billed_at(conn, pmo), zone)
    return f"correction of the premium SMS of {when:%Y-%m-%d %H:%M:%S} from {pmo.phone} (billed in {month})"


def owner(r: PremiumRepo, pmo: PremiumMo) -> PremiumMo:
    """The premium MO as its latest correction left it: the service and account it now belongs to."""
    found = r.corrected_to(pmo.id)
    return pmo if found is None else replace(pmo, service_id=found[0], account_id=found[1])


def _party(r: PremiumRepo, account_id: int | None) -> str:
    return "no service" if account_id is None else f"account {r.account_name(account_id)}"
