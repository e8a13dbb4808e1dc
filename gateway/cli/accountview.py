"""What an admin reads back of accounts: `account list`, and `account show NAME`, which prints every
setting `account set` can change under the option's name, so that nobody needs sqlite to see what
was set (limits, overflow, validity, quiet hours, notices, billing addresses); users with their limits.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.cli.common import open_store, when
from gateway.cli.terminal import one_line

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.accountrecord import Account
    from gateway.store.accounts import User
    from gateway.store.db import Store

# Line and paragraph separators, which `Printable` lets through: `str.splitlines` (and so a script
# reading a listing) breaks a line at them.
_SEPARATORS = {0x2028: "\\u2028", 0x2029: "\\u2029"}


def _line(value: object) -> str:
    """A stored text (a name, a reason, a marker) as one line: typed before the CLI and the panel
    refused line breaks, a marker `END\\nstate: active` printed a forged `state: active` line."""
    return one_line(value).translate(_SEPARATORS)


def cmd_account_list(cfg: Config, args: argparse.Namespace) -> int:
    accounts = open_store(cfg, must_exist=True).accounts.list_accounts()
    if not accounts:
        print("no accounts")
    for a in accounts:
        state = f"SUSPENDED ({a.suspended_reason})" if a.suspended_at else "active"
        window = (
            f"{a.reply_window_days:g} days"
            if a.reply_window_days is not None
            else f"{cfg.replies.window_days:g} days (default)"
        )
        print(
            _line(
                f"{a.name}: sender {_sender(cfg, a.sender, listed=True)},"
                f" networks {', '.join(a.networks) or '-'},"
                f" split {a.split_mode}, transliterate {_shown(a.transliterate)},"
                f" reply window {window}, {state}"
            )
        )
    return 0


def _sender(cfg: Config, sender: str | None, *, listed: bool = False) -> str:
    """The account's sender as set, and that the reply pool sends instead where it does: listed as
    the sender alone, it read as the number the account's SMS come from (R-3.2, `poolsender`)."""
    from gateway.cli.poolsender import UNUSED, pool_sends

    gw = cfg.gateway
    shown = (sender or gw.default_sender) if listed else (sender or f"default ({gw.default_sender})")
    if not pool_sends(cfg, sender):
        return shown
    return f"{shown} (unused: [replies] pool sends)" if listed else f"{shown} ({UNUSED})"


def _shown(value: object, unset: str = "none") -> str:
    """A stored setting as `account set` takes it back: NULL is what `none`/`default` set."""
    if value is None:
        return unset
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def user_details(u: User, used: Used | None = None) -> str:
    """What `user set` changes and a login needs, in the words of its options; with `used`, what the
    user has sent against those limits."""
    role = f"  role {u.role}" if u.role != "user" else ""
    return (
        f"password {'set' if u.password_hash else 'not set'}{role}"
        f"  monthly-limit {_shown(u.monthly_limit)}  daily-limit {_shown(u.daily_limit)}"
        + (f"  used {used.said(u.monthly_limit, u.daily_limit)}" if used else "")
    )


@dataclass(frozen=True)
class Used:
    """SMS parts counted this month and today in `[gateway] timezone`, as the limits count them.

    Shown because a limit lowered below what was already sent refuses every mail until the period
    ends, and `account show` said only the new limit: the admin could not tell why mail bounced."""

    month: int
    today: int

    @classmethod
    def of(cls, store: Store, scope: str, keys: dict[str, str]) -> Used:
        return cls(store.accounts.usage(scope, keys["monthly"]), store.accounts.usage(scope, keys["daily"]))

    def said(self, monthly: int | None, daily: int | None) -> str:
        over = [
            f"{name} limit 0: every mail refused"
            if limit == 0
            else f"the {name} limit of {limit} reached: mail refused until {until}"
            for name, limit, count, until in (
                ("monthly", monthly, self.month, "next month"),
                ("daily", daily, self.today, "tomorrow"),
            )
            if limit is not None and count >= limit
        ]
        counts = f"{self.month} parts this month, {self.today} today"
        return counts + (f" ({'; '.join(over)})" if over else "")


def usage_keys(cfg: Config, store: Store) -> dict[str, str]:
    """This month's and today's usage periods, by the store's clock in the installation's zone."""
    from acl.limits import period_keys

    return period_keys(datetime.fromtimestamp(store.clock(), ZoneInfo(cfg.gateway.timezone)))


def account_settings(
    cfg: Config,
    acc: Account,
    billing_to: list[str],
    users: list[User],
    used: Callable[[str], Used] | None = None,
) -> list[str]:
    """Every setting of the account as `key: value` lines, keyed by the `account set` options.

    A setting left to the installation says `default (<what applies>)`: the admin sees both that
    changing the config changes it and what it is now.
    """
    from gateway.configbase import quoted

    gw = cfg.gateway
    state = (
        f"suspended since {when(acc.suspended_at)} ({acc.suspended_reason})" if acc.suspended_at else "active"
    )
    quiet = f"{acc.quiet_start}-{acc.quiet_end}" if acc.quiet_start and acc.quiet_end else None
    settings = {
        "name": acc.name,
        "state": state,
        "sender": _sender(cfg, acc.sender),
        "networks": ", ".join(acc.networks) or "none",
        "monthly-limit": _shown(acc.monthly_limit),
        "daily-limit": _shown(acc.daily_limit),
        "split-mode": acc.split_mode,
        "transliterate": _shown(acc.transliterate),
        "overflow": acc.overflow,
        "validity-hours": _shown(acc.validity_hours, f"default ({gw.validity_hours:g})"),
        "end-marker": acc.end_marker or f"default ({gw.end_marker or 'none'})",
        # As TOML and JSON write strings: a phrase holding '", "' read as two.
        "cut-from": ", ".join(quoted(p) for p in acc.cut_from) or "none",
        "confirm": _shown(acc.confirm),
        "dlr-mail": acc.dlr_mail,
        "notify-address": acc.notify_address or "none",
        "inbound-address": acc.inbound_address or "none",
        "auto-generated": acc.auto_generated,
        "countries": ", ".join(acc.countries) or "any",
        "quiet-hours": _shown(quiet),
        "bulk": _shown(acc.bulk),
        "reply-window-days": _shown(acc.reply_window_days, f"default ({cfg.replies.window_days:g})"),
        "billing-to": ", ".join(billing_to) or "none",
        "users": str(len(users)),
    }
    if used is not None:  # not an option of `account set`: after them
        settings["used"] = used(f"account:{acc.id}").said(acc.monthly_limit, acc.daily_limit)
    return [f"{key}: {_line(value)}" for key, value in settings.items()] + [
        f"user: {_line(u.email)}  {user_details(u, used(f'user:{u.id}') if used else None)}" for u in users
    ]


def cmd_account_show(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.adminrules import BILLING_ADDRESSES_MAX

    store = open_store(cfg, must_exist=True)
    acc = store.accounts.get_account(args.name)  # NotFound names it: exit 1, as every "no such"
    users = store.accounts.list_users(acc.name)
    billing_to = store.accounts.billing_addresses(acc.id)
    keys = usage_keys(cfg, store)
    for line in account_settings(cfg, acc, billing_to, users, lambda scope: Used.of(store, scope, keys)):
        print(line)
    if len(billing_to) > BILLING_ADDRESSES_MAX:  # stored before the cap: each is mailed every bill
        print(
            f"smsgw: note: account {acc.name} has {len(billing_to)} billing addresses, more than the"
            f" {BILLING_ADDRESSES_MAX} an account may now be given; each is mailed the billing file every"
            " month: set the right ones with `smsgw account set --billing-to`",
            file=sys.stderr,
        )
    return 0


def cmd_user_list(cfg: Config, args: argparse.Namespace) -> int:
    store = open_store(cfg, must_exist=True)
    if args.account is not None:
        store.accounts.get_account(args.account)  # a typo said "no users"; NotFound names it, exit 1
    users = store.accounts.list_users(args.account)
    if not users:
        print("no users")
    keys = usage_keys(cfg, store)
    for u in users:
        print(f"{u.email}  account {u.account}  {user_details(u, Used.of(store, f'user:{u.id}', keys))}")
    return 0
