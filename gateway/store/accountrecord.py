"""The account as the gateway reads it: its fields, the columns they are stored in, how a row
becomes one, and which of them an admin may set.

Apart from the accounts repository (gateway/store/accounts.py) because intake, composing and the
CLI's views read this shape on every mail, while the repository's verbs that change the rows (and
move the SMS held for quiet hours) are the admin's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACCOUNT_SETTINGS = (
    "sender",
    "split_mode",
    "transliterate",
    "overflow",
    "validity_hours",
    "end_marker",
    "confirm",
    "dlr_mail",
    "notify_address",
    "monthly_limit",
    "daily_limit",
    "bulk",
    "quiet_start",
    "quiet_end",
    "reply_window_days",
    "cut_from",
    "auto_generated",
    "inbound_address",
    "countries",
)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    sender: str | None
    split_mode: str
    transliterate: bool
    overflow: str
    validity_hours: float | None
    end_marker: str | None
    confirm: bool
    dlr_mail: str
    notify_address: str | None
    monthly_limit: int | None
    daily_limit: int | None
    bulk: bool
    quiet_start: str | None
    quiet_end: str | None
    suspended_at: float | None
    suspended_reason: str | None
    reply_window_days: float | None = None  # None: the installation's [replies] window_days
    # `account set --cut-from`: the text ends above a line starting with one (stored a line each)
    cut_from: tuple[str, ...] = ()
    # `account set --auto-generated`: "send" sends a monitoring system's alerts (`alerts.alert_only`)
    auto_generated: str = "record"
    # `account set --inbound-address`: where an SMS to the account's own sender number that answers
    # no conversation is mailed (`gateway.conversations.inbound`); None: the operator's fallback
    inbound_address: str | None = None
    # `account set --countries` (`accountrules.countries_list`): the regions its SMS may go to; (): any
    countries: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()


ACCOUNT_COLS = (
    "id, name, sender, split_mode, transliterate, overflow, validity_hours, end_marker, confirm, dlr_mail,"
    " notify_address, monthly_limit, daily_limit, bulk, quiet_start, quiet_end, suspended_at,"
    " suspended_reason, reply_window_days, cut_from, auto_generated, inbound_address, countries"
)
_COUNTRIES_AT = ACCOUNT_COLS.replace(" ", "").split(",").index("countries")


def account_from_row(row: tuple[Any, ...], networks: tuple[str, ...]) -> Account:
    """The record of a row of `ACCOUNT_COLS`, with the networks it trusts."""
    a = list(row)
    for i in (4, 8, 13):  # booleans stored as integers
        a[i] = bool(a[i])
    a[19] = tuple(a[19].split("\n")) if a[19] else ()
    a[_COUNTRIES_AT] = tuple(a[_COUNTRIES_AT].split(",")) if a[_COUNTRIES_AT] else ()
    return Account(*a, networks=networks)
