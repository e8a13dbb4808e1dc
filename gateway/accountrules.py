"""An account's own setting, else the gateway's: each path that sends or answers for an account
(staff mail, premium answers, conversations) reads it here, so that none of them keeps a rule of
its own (premium answers once ignored the account's end marker, window and validity). The CLI and
the panel read `--countries` here too, and the SMTP side judges a number by it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.accountrecord import Account

# The shortest validity an SMSC can be told: CIMD2's relative validity counts in steps of 5 minutes
# and its first code is 5 minutes (smsc/cimd2/times.py `validity_seconds(0)`; a test keeps them
# equal). Written here, not imported: the SMTP side knows no link driver.
SHORTEST_VALIDITY_SECONDS = 300


def end_marker(cfg: Config, account: Account | None) -> str | None:
    """Where a mail's text ends for SMS: the footer and signature below it never reach the phone."""
    return (account.end_marker if account and account.end_marker else cfg.gateway.end_marker) or None


def validity_seconds(
    cfg: Config, account: Account | None, *, expires: datetime | None = None, start: datetime | None = None
) -> float:
    """How long an SMS counted from `start` (its mail's arrival, or the end of quiet hours) may wait
    for delivery: the account's `--validity-hours`, else `[gateway] validity_hours`; shortened, never
    lengthened, by the mail's own `expires` (Outlook's "Expires after", or `Expires:`). None is left for
    a mail that expires before quiet hours end: the relay refuses one whose `Expiry-Date:` does so at
    DATA (`smtp.compose`); one whose `Expires:` does expires unsent and its sender is told so."""
    hours = (account.validity_hours if account else None) or cfg.gateway.validity_hours
    if expires is None or start is None:
        return 3600 * hours
    return max(0.0, min(3600 * hours, (expires - start).total_seconds()))


def reply_window_days(cfg: Config, days: float | None) -> float:
    """An account's `--reply-window-days` (`days`, None when unset), else `[replies] window_days`."""
    return days if days is not None else cfg.replies.window_days


def countries_list(values: Iterable[str]) -> tuple[str, ...]:
    """`--countries PL DE` (or "PL,DE", any case) as stored: ISO 3166 regions libphonenumber knows,
    each once, in the order given; `any` (or `none`, `all`, `default`) alone clears the list.

    ValueError names a code that is no region: a typo must not leave the account sending nowhere."""
    codes = [c for v in values for c in v.replace(",", " ").upper().split()]
    if codes and all(c in ("ANY", "NONE", "ALL", "DEFAULT") for c in codes):
        return ()
    unknown = [c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not a country code; give ISO codes such as PL, DE, CZ (or 'any')"
        )
    return tuple(dict.fromkeys(codes))


def country_of(number: str) -> str:
    """A number's region for `--countries` (`+48…` PL, `+1 514…` CA), as libphonenumber reads it:
    "001" for an international network's (+882, +883), "ZZ" for a code of no country."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or "ZZ"
    except phonenumbers.NumberParseException:
        return "ZZ"


def outside_countries(account: Account, number: str) -> str | None:
    """The number's region when the account sends only to other countries' numbers, else None."""
    if not account.countries:
        return None
    region = country_of(number)
    return None if region in account.countries else region
