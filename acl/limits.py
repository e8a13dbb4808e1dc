"""Quotas in SMS parts, per user and per account, per calendar month and optionally per day.

Pure: the caller reads usage inside the accepting transaction and records the reservation in the
same transaction, so two sessions can never both spend the last parts (SPEC R-2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Quota:
    owner: str  # "user anna@acme.example" or "account ACME", as the refusal names it
    scope: str  # usage key: "user:<id>" or "account:<id>"
    period: str  # "monthly" or "daily"
    key: str  # "2026-11" or "2026-11-21"
    limit: int | None


@dataclass(frozen=True, slots=True)
class Exceeded:
    quota: Quota
    used: int
    needed: int

    def reply(self) -> str:
        q = self.quota
        return (
            f"550 5.7.1 {q.period.capitalize()} limit of {q.owner}: {q.limit} parts, used {self.used},"
            f" this email needs {self.needed}"
        )


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
    out = []
    for kind, (ident, name, monthly, daily) in (("user", user), ("account", account)):
        for period, limit in (("monthly", monthly), ("daily", daily)):
            out.append(Quota(f"{kind} {name}", f"{kind}:{ident}", period, keys[period], limit))
    return out


def first_exceeded(checks: list[tuple[Quota, int]], needed: int) -> Exceeded | None:
    """The first quota (user before account, month before day) that `needed` parts would break."""
    for quota, used in checks:
        if quota.limit is not None and used + needed > quota.limit:
            return Exceeded(quota, used, needed)
    return None
