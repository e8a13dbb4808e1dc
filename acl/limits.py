"""Quotas in SMS parts, per user and per account, per calendar month and optionally per day.

Pure: the caller reads usage inside the accepting transaction and records the reservation in the
same transaction, so two sessions can never both spend the last parts (SPEC R-2.2).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Quota:
    owner: str  # "user anna@acme.example" or "account ACME", as the refusal names it
    scope: str  # usage key: "user:<id>" or "account:<id>"
    period: str  # "monthly" or "daily"
    key: str  # "2026-11" or "2026-11-21"
    limit: int | None
    zone: str = ""  # [gateway] timezone's name, whose midnight or month start begins the next period


@dataclass(frozen=True, slots=True)
class Exceeded:
    quota: Quota
    used: int
    needed: int

    def reply(self, *, at_least: bool = False) -> str:
        """One line (Outlook shows only the reply's text): the limit, and then what the sender can do,
        wait for the count to start again or ask the admin to raise it, with the command to do so.
        A mail needing more than the whole limit never fits: waiting is not offered then.
        `at_least`: `needed` is the least any mail needs, said before its body is known (at RCPT),
        where "this email needs 1" read as the count of a mail that may well need more."""
        q = self.quota
        kind, _, name = q.owner.partition(" ")
        command = f"smsgw {kind} set {shlex.quote(name)} --{q.period}-limit"
        parts = "part" if q.limit == 1 else "parts"  # "1 parts" read as a slip
        head = (
            f"550 5.7.1 {q.period.capitalize()} limit of {q.owner}: {q.limit} {parts}, used {self.used},"
            f" this email needs {'at least ' if at_least else ''}{self.needed}"
        )
        if q.limit is not None and self.needed > q.limit:
            return f"{head}, more than the whole limit; the gateway's admin can raise it ({command})"
        zone = f" ({q.zone})" if q.zone else ""
        return (
            f"{head}; the count starts again {next_period(q)}{zone}, or the gateway's admin can raise"
            f" the limit ({command})"
        )


def next_period(quota: Quota) -> str:
    """When `quota`'s count starts again, from its period key: "at midnight", "on 2026-12-01"."""
    if quota.period == "daily":
        return "at midnight"
    year, month = (int(x) for x in quota.key.split("-")[:2])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"on {year:04d}-{month:02d}-01"


def period_keys(now: datetime) -> dict[str, str]:
    """Calendar periods in the installation's time zone (the caller passes an aware local time)."""
    month = f"{now.year:04d}-{now.month:02d}"  # strftime's "%Y-%m", at a fifth of its cost per mail
    return {"monthly": month, "daily": f"{month}-{now.day:02d}"}


# A quota's owner as a refusal names it, its usage scope, and its monthly and daily limit: what an
# email carries from its session to the accepting write, where `quotas` makes the Quota objects only
# for a limit that is set (most users and accounts have none). Four frozen objects a mail cost the
# intake worker their building and pickling and the daemon their rebuilding (some 35,000 instructions).
LimitRow = tuple[str, str, int | None, int | None]


def zone_name(now: datetime) -> str:
    """The name a refusal gives the time zone of the periods: ZoneInfo's key, else `tzname` ("UTC")."""
    return getattr(now.tzinfo, "key", None) or now.tzname() or ""


def quotas(rows: tuple[LimitRow, ...], periods: tuple[str, str], zone: str) -> tuple[Quota, ...]:
    """The quotas of `rows` (user before account, month before day) in the `periods` (this month, today)."""
    month, day = periods
    return tuple(
        quota
        for owner, scope, monthly, daily in rows
        for quota in (
            Quota(owner, scope, "monthly", month, monthly, zone),
            Quota(owner, scope, "daily", day, daily, zone),
        )
    )


def first_exceeded(checks: list[tuple[Quota, int]], needed: int) -> Exceeded | None:
    """The first quota (user before account, month before day) that `needed` parts would break."""
    for quota, used in checks:
        if quota.limit is not None and used + needed > quota.limit:
            return Exceeded(quota, used, needed)
    return None
