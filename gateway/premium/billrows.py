"""A month's premium rows as the billing files list them (SPEC R-5): the premium SMS with their money,
and the corrections booked for those of a month already billed.

Billing (`billing_reports.monthly`) reads them on its own reader; their SQL is here, with the
tables' other SQL (ARCHITECTURE.md section 3), on billing's rule of the month an MO is in
(`billing_reports.repo.billed_at`). Cursors are returned unconsumed, in time order, as billing's
other rows are, so that a month is streamed and never sorted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from billing_reports.repo import PARTS_BOUND_SECONDS, billed_at, in_billed_order


def premium_rows(
    conn: sqlite3.Connection, account_id: int | None, start: float, end: float
) -> Iterator[tuple[Any, ...]]:
    """Premium MOs with their money (grosze); `account_id` None: those no service claimed. Last, the
    billing status it was billed with when it moved after its month was billed (None if it never
    did): its first correction's reversal names it (`gateway.premium.corrections`)."""
    who = "account_id = ?" if account_id is not None else "account_id IS NULL"
    span = (start, end + PARTS_BOUND_SECONDS)
    rows = conn.execute(
        f"SELECT {billed_at('p')}, p.id, p.phone, p.number, p.parts, p.state, p.note, p.price,"
        # A late part names its SMS's first premium MO on its own row (migration 23): money records
        # both, which the purge keeps, unlike the rows of table mo that `mo.follows` links; so is
        # when a long one's first part came (migration 60).
        f" p.commission, {billed_at('f')}, (SELECT c.status FROM premium_corrections c"
        " INDEXED BY premium_corrections_mo WHERE c.premium_mo_id = p.id ORDER BY c.id LIMIT 1),"
        " p.received_at FROM premium_mo p INDEXED BY premium_mo_billing"
        " LEFT JOIN premium_mo f ON f.id = p.follows"
        f" WHERE p.{who} AND p.received_at >= ? AND p.received_at < ?"
        " ORDER BY p.received_at, p.id",
        (account_id, *span) if account_id is not None else span,
    )
    return in_billed_order(rows, start, end)


def correction_rows(
    conn: sqlite3.Connection, account_id: int | None, start: float, end: float
) -> Iterator[tuple[Any, ...]]:
    """Premium MOs moved to or from the account (`account_id` None: no service) in [start, end), by
    when the move was booked (`gateway.premium.corrections`), with their signed counts and money."""
    who = "c.account_id = ?" if account_id is not None else "c.account_id IS NULL"
    args = (account_id, start, end) if account_id is not None else (start, end)
    return conn.execute(
        "SELECT c.created_at, c.id, p.phone, p.number, c.parts, c.status, c.note, c.price, c.commission,"
        " c.sms FROM premium_corrections c INDEXED BY premium_corrections_billing"
        " JOIN premium_mo p ON p.id = c.premium_mo_id"
        f" WHERE {who} AND c.created_at >= ? AND c.created_at < ? ORDER BY c.created_at, c.id",
        args,
    )
