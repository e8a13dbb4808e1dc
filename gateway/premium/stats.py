"""A month's premium figures, as `smsgw premium stats` and the panel's premium page show them.

Read-only, apart from the records the daemon writes (`gateway.premium.repo`). A month's figures are
what its billing files bill for premium MOs: the MOs its phones sent in it (a long one by its first
part, `billing_reports.repo.billed_at`), and the corrections booked in it
(`gateway.premium.corrections`: an SMS of a month already billed moved to another party, signed).
Without the corrections an admin comparing the figures of a month with its billing file found
other counts and money and nothing saying why. Money is integer grosze.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from billing_reports.repo import PARTS_BOUND_SECONDS, billed_at
from gateway.premium import correctionnotes as notes
from gateway.store.repository import Repository


@dataclass(frozen=True, slots=True)
class Figures:
    """One line of a month's figures: one service's (None: no service's) premium MOs to one number,
    or the corrections booked for them, summed and signed. A removed service keeps its line apart
    from the one that took its password later."""

    password: str | None
    removed: bool
    number: str
    sms: int
    parts: int
    price: int
    commission: int


@dataclass(frozen=True, slots=True)
class Correction:
    """One correction line, as the billing file of its month lists it (its note names the SMS)."""

    booked_at: float
    password: str | None
    number: str
    phone: str
    sms: int
    parts: int
    price: int
    commission: int
    status: str
    note: str


# An SMS no service took owes no commission: there is no client to pay it to, and the monthly
# summary counts none for it. The summary says so by the account a line is billed to.
_COMMISSION = "CASE WHEN c.account_id IS NULL THEN 0 ELSE c.commission END"


def _scope(column: str, account_id: int | None) -> tuple[str, tuple[int, ...]]:
    """Only that account's rows with `account_id`; a row of no account is the operator's alone."""
    return ("", ()) if account_id is None else (f" AND {column} = ?", (account_id,))


def traffic(
    conn: sqlite3.Connection, start: float, end: float, account_id: int | None = None
) -> list[Figures]:
    """Premium MOs sent in [start, end), per service and number; with `account_id`, only that
    account's (a password given up by one account and later given to another must not show the
    first one's traffic to the second).

    An MO no service took owes no commission: summed, `premium stats` and the monthly summary
    gave different payouts for one month. A long one goes by when its first part came, as its
    billing line does (`billed_at`): by its join, a vote sent on the 31st at 23:59:58 counted
    in the next month here and in its billing file. Read by `received_at` on its index, over
    the bound before `end` more, as billing reads it."""
    return named(conn, grouped(conn, start, end, account_id))


def grouped(
    conn: sqlite3.Connection,
    start: float,
    end: float,
    account_id: int | None = None,
    after: int = 0,
    upto: int | None = None,
) -> list[tuple[int | None, str, int, int, int, int]]:
    """`traffic` by service id and number, not yet named: (service_id, number, SMS, parts, price,
    commission). Apart so that the panel can keep a month's (`web.premiumread`): the names and
    whether a service was removed are read anew each time, they change after the month. Only the
    votes of ids in (`after`, `upto`]: those stored since the panel last read a month it keeps
    are found by id, not on the month's index, being the few stored since.

    Read on an index holding every column read (migration 61): on the one of `received_at`, each
    vote's whole row was read too, 0.8 s for a month of 300,000."""
    scope, args = _scope("p.account_id", account_id)
    when = billed_at("p")
    if upto is not None:
        scope, args = f"{scope} AND p.id <= ?", (*args, upto)
    if after:
        scope, args = f"{scope} AND p.id > ?", (*args, after)
    return [
        (r[0], r[1], r[2], r[3] or 0, r[4] or 0, r[5] or 0)
        for r in conn.execute(
            # The late parts of an SMS (`follows`) add parts and money, not an SMS; by the money
            # record, which the purge keeps, not by `mo.follows`, which it deletes.
            "SELECT p.service_id, p.number, COUNT(*) FILTER (WHERE p.follows IS NULL),"
            " SUM(p.parts), SUM(p.price),"
            " SUM(CASE WHEN p.service_id IS NULL THEN 0 ELSE p.commission END)"
            f" FROM premium_mo p{' NOT INDEXED' if after else ''} WHERE p.received_at >= ?"
            f" AND p.received_at < ? AND {when} >= ?"
            f" AND {when} < ?{scope} GROUP BY p.service_id, p.number",
            (start, end + PARTS_BOUND_SECONDS, start, end, *args),
        )
    ]


def named(conn: sqlite3.Connection, rows: list[tuple[int | None, str, int, int, int, int]]) -> list[Figures]:
    """`grouped` rows as `Figures`, by password (no service's last), a removed service's before the
    live one of its password, then number."""
    ids = sorted({r[0] for r in rows if r[0] is not None})
    services: dict[int, tuple[str, float | None]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        services.update(
            (sid, (password, removed))
            for sid, password, removed in conn.execute(
                "SELECT id, password, removed_at FROM premium_services"
                f" WHERE id IN ({','.join('?' * len(part))})",
                part,
            )
        )
    figures = []
    for service_id, number, sms, parts, price, commission in rows:
        password, removed = services.get(service_id, (None, None)) if service_id is not None else (None, None)
        figures.append(Figures(password, removed is not None, number, sms, parts, price, commission))
    figures.sort(key=lambda f: (f.password is None, f.password or "", not f.removed, f.number))
    return figures


def moved(conn: sqlite3.Connection, start: float, end: float, account_id: int | None = None) -> list[Figures]:
    """Corrections booked in [start, end), per service and number, by the account each side was
    booked for (`premium_corrections.account_id`), as the billing files count them: a company
    sees the reversal of its SMS and the SMS given to it, never the other party's side."""
    scope, args = _scope("c.account_id", account_id)
    return [
        Figures(r[0], r[1] is not None, *r[2:])
        for r in conn.execute(
            "SELECT s.password, s.removed_at, p.number, SUM(c.sms), SUM(c.parts), SUM(c.price),"
            f" SUM({_COMMISSION}) FROM premium_corrections c"
            " JOIN premium_mo p ON p.id = c.premium_mo_id"
            " LEFT JOIN premium_services s ON s.id = c.service_id"
            f" WHERE c.created_at >= ? AND c.created_at < ?{scope}"
            " GROUP BY c.service_id, p.number"
            " ORDER BY s.password IS NULL, s.password, s.removed_at IS NULL, p.number",
            (start, end, *args),
        )
    ]


def corrections(
    conn: sqlite3.Connection, start: float, end: float, account_id: int | None = None, limit: int = -1
) -> list[Correction]:
    """The correction lines booked in [start, end), in the billing file's order (time, then id).
    Each note as its reader reads it (`correctionnotes`): the company its own line's words (with
    `account_id`), the operator the full note naming every party."""
    scope, args = _scope("c.account_id", account_id)
    note = notes.full if account_id is None else notes.told
    return [
        Correction(*r[:-1], note(r[-1]))
        for r in conn.execute(
            "SELECT c.created_at, s.password, p.number, p.phone, c.sms, c.parts, c.price,"
            f" {_COMMISSION}, c.status, c.note FROM premium_corrections c"
            " JOIN premium_mo p ON p.id = c.premium_mo_id"
            " LEFT JOIN premium_services s ON s.id = c.service_id"
            f" WHERE c.created_at >= ? AND c.created_at < ?{scope} ORDER BY c.created_at, c.id LIMIT ?",
            (start, end, *args, limit),
        )
    ]


class PremiumStats(Repository):
    """The figures on the daemon's or the CLI's own connection (the panel reads them on its reader's)."""

    def traffic(self, start: float, end: float, account_id: int | None = None) -> list[Figures]:
        return traffic(self.conn, start, end, account_id)

    def moved(self, start: float, end: float, account_id: int | None = None) -> list[Figures]:
        return moved(self.conn, start, end, account_id)

    def corrections(
        self, start: float, end: float, account_id: int | None = None, limit: int = -1
    ) -> list[Correction]:
        return corrections(self.conn, start, end, account_id, limit)
