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

    def reply(self) -> str:
        """One line (Outlook shows only the reply's text): the limit, and then what the sender can do,
        wait for the count to start again or ask the admin to raise it, with the command to do so.
        A mail needing more than the whole limit never fits: waiting is not offered then."""
        q = self.quota
        kind, _, name = q.owner.partition(" ")
        command = f"smsgw {kind} set {shlex.quote(name)} --{q.period}-limit"
        parts = "part" if q.limit == 1 else "parts"  # "1 parts" read as a slip
        head = (
            f"550 5.7.1 {q.period.capitalize()} limit of {q.owner}: {q.limit} {parts}, used {self.used},"
            f" this email needs {self.needed}"
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


def quotas(
    *,
    now: datetime,
    user: tuple[int, str, int | None, int | None],  # id, email, monthly, daily
    account: tuple[int, str, int | None, int | None],  # id, name, monthly, daily
) -> list[Quota]:
    keys = period_keys(now)
    zone = getattr(now.tzinfo, "key", None) or now.tzname() or ""  # ZoneInfo's name, else "UTC"
    out = []
    for kind, (ident, name, monthly, daily) in (("user", user), ("account", account)):
        for period, limit in (("monthly", monthly), ("daily", daily)):
            out.append(Quota(f"{kind} {name}", f"{kind}:{ident}", period, keys[period], limit, zone))
    return out


def first_exceeded(checks: list[tuple[Quota, int]], needed: int) -> Exceeded | None:
    """The first quota (user before account, month before day) that `needed` parts would break."""
    for quota, used in checks:
        if quota.limit is not None and used + needed > quota.limit:
            return Exceeded(quota, used, needed)
    return None
