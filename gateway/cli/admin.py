"""Admin commands: accounts, users and their limits (`smsgw account|user ...`); opt-outs in `optouts`.

What the admin reads back (`account list|show`, users' limits) is in `gateway.cli.accountview`.

They change rows through the store's verbs in the same SQLite file the daemon uses (WAL), so they
work while it runs and the daemon sees each change on the next mail. Only `account add`, the first
command of a new install, may create the database, and only in a state directory that exists; every
other one refuses a missing database (a mistyped `state_dir`) instead of writing to a fresh one the
daemon never reads.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from acl.accounts import user_address_problem
from gateway.adminrules import (
    CUT_FROM_MIN,
    END_MARKER_MAX,
    SUSPENSION_REASON_DEFAULT,
    SUSPENSION_REASON_MAX,
    billing_addresses,
    cut_from_list,
    cut_from_phrase,
    end_marker_problem,
    limits_note,
    mail_address_problem,
    no_password_note,
    suspend,
    suspension_reason_problem,
)
from gateway.cli.accountnames import add_remove_command, warn_of_lookalikes
from gateway.cli.accountvalues import (
    countries_value,
    inbound_address_value,
    limit_option,
    networks_value,
    notify_address_value,
    reply_window_value,
    say_if_unanswerable,
    sender_value,
    validity_hours_value,
)
from gateway.cli.accountview import cmd_account_list, cmd_account_show, cmd_user_list
from gateway.cli.acl import add_user_commands
from gateway.cli.audit import ARROW, audited, changes, shown
from gateway.cli.common import EXIT_USAGE, CliError, EndMarker, account_name, open_store, when
from gateway.cli.stored import shared_sender_line, shared_senders
from gateway.config import MAX_VALIDITY_HOURS, Config
from gateway.mailheaders import is_plain_address
from gateway.relaynets import network
from gateway.store.accounts import Account
from gateway.store.db import Store


def cmd_account_add(cfg: Config, args: argparse.Namespace) -> int:
    args.relay_network = networks_value(args.relay_network)
    if args.sender is not None:
        args.sender = sender_value(args.sender)
    store = open_store(cfg)
    with store.db.transaction():
        acc = store.accounts.add_account(args.name, networks=args.relay_network, sender=args.sender)
        # Of no account, as the panel's: a row of its own would keep `account remove` from taking
        # back a typo.
        settings = f"networks {shown(acc.networks)}, sender {shown(acc.sender)}"
        audited(store, None, "account.add", f"{acc.name} ({settings})")
    warn_of_lookalikes(store, acc.name)
    print(f"account {acc.name} added (networks: {', '.join(acc.networks) or 'none'})")
    say_if_unanswerable(args.sender)
    for number, names in shared_senders(cfg).items():
        if acc.name in names:
            print(f"note: {shared_sender_line(number, names)}")
    return 0


def cmd_account_set(cfg: Config, args: argparse.Namespace) -> int:
    from acl.quiet import parse_window

    settings: dict[str, Any] = {}
    for key in ("split_mode", "overflow", "end_marker", "dlr_mail", "auto_generated"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    if (args.end_marker or "").lower() == "default":
        # As the other options go back to the gateway's setting: the word was stored as the marker,
        # shown as "end-marker: default", and a line reading "default" cut the SMS.
        settings["end_marker"] = None
    elif args.end_marker is not None and (problem := end_marker_problem(args.end_marker)) is not None:
        raise CliError(f"--end-marker: {problem}", EXIT_USAGE)
    if args.sender is not None:
        settings["sender"] = args.sender = sender_value(args.sender)
    cut_from = _cut_from_change(args)
    if args.validity_hours is not None:
        settings["validity_hours"] = validity_hours_value(args.validity_hours)
    for key in ("monthly_limit", "daily_limit"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = limit_option(f"--{key.replace('_', '-')}", value)
    for key in ("transliterate", "bulk", "confirm"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = int(value == "on")
    if args.reply_window_days is not None:
        settings["reply_window_days"] = reply_window_value(args.reply_window_days)
    if args.quiet_hours is not None:
        if args.quiet_hours.lower() in ("none", "off"):
            settings["quiet_start"] = settings["quiet_end"] = None
        else:
            try:
                settings["quiet_start"], settings["quiet_end"] = parse_window(args.quiet_hours)
            except ValueError as exc:
                raise CliError(f"--quiet-hours: {exc}", EXIT_USAGE) from exc
    if args.notify_address is not None:
        settings["notify_address"] = notify_address_value(cfg, args.notify_address)
    if args.countries is not None:
        settings["countries"] = countries_value(args.countries)
    if args.inbound_address is not None:
        settings["inbound_address"] = inbound_address_value(cfg, args.inbound_address)
    add = networks_value(args.add_network)
    remove = networks_value(args.remove_network)  # also a row stored as typed, by the network it stands for
    try:
        billing_to = billing_addresses(cfg, args.billing_to or [])  # `none`: billing mail off
    except ValueError as exc:
        raise CliError(f"--billing-to: {exc}", EXIT_USAGE) from exc
    unchanged = not settings and cut_from is None and not args.add_network and not args.remove_network
    if unchanged and args.billing_to is None:
        raise CliError("nothing to change; see `smsgw account set --help`", EXIT_USAGE)
    store = open_store(cfg, must_exist=True)  # after the arguments: a usage error touches nothing
    with store.db.transaction():  # every setting and its audit row, or nothing
        before = _recorded(store, store.accounts.get_account(args.name))
        if cut_from is not None:
            settings["cut_from"] = _cut_from_value(cut_from, store.accounts.get_account(args.name).cut_from)
        store.accounts.update_account(args.name, **settings)
        had = {str(network(c)) for c in store.accounts.get_account(args.name).networks}
        acc = store.accounts.set_account_networks(args.name, add=add, remove=remove)
        if args.billing_to is not None:
            store.accounts.set_billing_addresses(args.name, billing_to)
        changed = changes(before, _recorded(store, acc), before)
        audited(store, acc.id, "account.set", f"{acc.name}: {', '.join(changed) or 'nothing'}")
    for net in remove:
        if net not in had:  # said: "updated" alone read as if it had been removed
            print(f"note: {net} was not one of account {acc.name}'s networks")
    print(f"account {acc.name} updated")
    if note := limits_note(acc.monthly_limit, acc.daily_limit):
        print(f"note: {note}")
    say_if_unanswerable(args.sender)
    if acc.inbound_address and (args.inbound_address is not None or args.sender is not None):
        from gateway.conversations import inbound

        for doubt in inbound.doubts(store.db.conn, cfg, acc.name):
            print(f"note: {doubt}")
    return 0


def _recorded(store: Store, acc: Account) -> dict[str, Any]:
    """An account's settings as its audit row compares them (`account set`), billing addresses too."""
    kept = {
        k: v for k, v in asdict(acc).items() if k not in ("id", "name", "suspended_at", "suspended_reason")
    }
    return {**kept, "billing_to": store.accounts.billing_addresses(acc.id)}


def _cut_from_change(args: argparse.Namespace) -> tuple[bool, list[str], list[str]] | None:
    """(clear first, phrases to add, phrases to take off) from `--no-cut-from`, `--cut-from` and
    `--remove-cut-from`, the added ones checked before the store is opened; None: no change."""
    if not (args.no_cut_from or args.cut_from or args.remove_cut_from):
        return None
    try:
        cut_from_list(args.cut_from)
    except ValueError as exc:
        raise CliError(f"--cut-from: {exc}", EXIT_USAGE) from exc
    return args.no_cut_from, args.cut_from, args.remove_cut_from


def _cut_from_value(change: tuple[bool, list[str], list[str]], now: tuple[str, ...]) -> tuple[str, ...]:
    """The account's phrases after the change: added to those it has (`--no-cut-from` drops them
    first), a removed one taken off as phrases are compared (case and spacing aside)."""
    clear, add, remove = change
    gone = {cut_from_phrase(p).casefold() for p in remove}
    missing = gone - {p.casefold() for p in now}
    if missing and not clear:
        named = ", ".join(repr(p) for p in remove if cut_from_phrase(p).casefold() in missing)
        raise CliError(
            f"--remove-cut-from: {named} is not one of the account's cut-from phrases"
            " (see `smsgw account show`)",
            EXIT_USAGE,
        )
    kept = [p for p in ([] if clear else now) if p.casefold() not in gone]
    try:
        return cut_from_list([*kept, *add])
    except ValueError as exc:
        raise CliError(f"--cut-from: {exc}", EXIT_USAGE) from exc


def _reason(value: str | None) -> str | None:
    """`--reason`, trimmed as the panel trims it; None (also for "") keeps a suspension's reason."""
    reason = (value or "").strip()
    if reason and (problem := suspension_reason_problem(reason)) is not None:
        raise CliError(f"--reason: {problem}", EXIT_USAGE)
    return reason or None


def cmd_account_suspend(cfg: Config, args: argparse.Namespace) -> int:
    reason = _reason(args.reason)
    store = open_store(cfg, must_exist=True)  # after the argument: a usage error touches nothing
    with store.db.transaction():
        done = suspend(store, args.name, reason)
        acc = store.accounts.get_account(args.name)
        if done.since is None:
            audited(store, acc.id, "account.suspend", f"{acc.name}: active {ARROW} suspended ({done.reason})")
        elif done.reason != done.earlier_reason:  # as the panel: a suspension repeated is no change
            detail = f"{acc.name}: reason {done.earlier_reason or 'none'} {ARROW} {done.reason}"
            audited(store, acc.id, "account.suspend", detail)
    print(done.said(args.name, when))
    return 0


def cmd_account_resume(cfg: Config, args: argparse.Namespace) -> int:
    store = open_store(cfg, must_exist=True)
    acc = store.accounts.get_account(args.name)
    if acc.suspended_at is None:
        raise CliError(f"account {acc.name} is not suspended")
    with store.db.transaction():
        released = store.policy.resume_account(acc.id)
        was = f"suspended since {when(acc.suspended_at)} ({acc.suspended_reason or 'no reason'})"
        audited(store, acc.id, "account.resume", f"{acc.name}: {was} {ARROW} active; {released} held SMS go")
    print(f"account {acc.name} resumed; {released} held message(s) go again")
    return 0


def cmd_user_set(cfg: Config, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    for key in ("monthly_limit", "daily_limit"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = limit_option(f"--{key.replace('_', '-')}", value)
    if args.role is not None:
        fields["role"] = args.role
    if not fields:
        raise CliError("nothing to change; give --monthly-limit, --daily-limit and/or --role", EXIT_USAGE)
    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        old = store.accounts.find_user(args.email)
        user = store.accounts.set_user(args.email, **fields)
        before = {} if old is None else {k: getattr(old, k) for k in fields}
        detail = f"{user.email}: {', '.join(changes(before, fields, fields)) or 'nothing'}"
        audited(store, user.account_id, "user.set", detail)
    print(f"user {user.email} updated")
    if note := limits_note(user.monthly_limit, user.daily_limit):
        print(f"note: {note}")
    if args.role is not None and (note := no_password_note(user.role, user.password_hash)):
        print(f"note: {note}")
    return 0


def cmd_user_add(cfg: Config, args: argparse.Namespace) -> int:
    if not is_plain_address(args.email):
        raise CliError(
            f"EMAIL {args.email!r} is not a plain email address (user@domain, without a display name)",
            EXIT_USAGE,
        )
    if (problem := user_address_problem(args.email)) is not None:
        raise CliError(f"EMAIL {problem}", EXIT_USAGE)
    if (problem := mail_address_problem(cfg, args.email)) is not None:
        # Answers by SMS and the gateway's notices go to the user's address: on the gateway's own
        # domain they come back to it and are refused, and the user never sees one.
        raise CliError(f"EMAIL {problem}", EXIT_USAGE)
    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        user = store.accounts.add_user(args.email, args.account)
        audited(store, user.account_id, "user.add", f"{user.email} (account {user.account})")
    print(f"user {user.email} added to account {user.account}")
    return 0


def cmd_user_remove(cfg: Config, args: argparse.Namespace) -> int:
    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        user = store.accounts.find_user(args.email)
        store.accounts.remove_user(args.email)
        if user is not None:  # else remove_user refused it
            audited(
                store,
                user.account_id,
                "user.remove",
                f"{user.email} (account {user.account}, role {user.role})",
            )
    print(f"user {args.email} removed")
    return 0


def add_admin_commands(sub: Any) -> None:
    a = sub.add_parser("account", help="client companies").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    aa = a.add_parser("add", help="add a client company")
    aa.add_argument("name", type=account_name, help="the company's name, as in the panel and billing files")
    aa.add_argument(
        "--relay-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="a client network whose mail servers may use the relay port, e.g. 192.0.2.0/24"
        " (may be repeated; default: none, submission port only)",
    )
    aa.add_argument(
        "--sender",
        metavar="NUMBER_OR_NAME",
        help="originating address (a name cannot be answered; default: [gateway] default_sender)",
    )
    aa.set_defaults(func=cmd_account_add)
    a.add_parser(
        "list", help="accounts with their sender, networks and state (every setting: `account show`)"
    ).set_defaults(func=cmd_account_list)
    ashow = a.add_parser("show", help="every setting of an account, its billing addresses and users")
    ashow.add_argument("name", help="the account, as `smsgw account list` shows it")
    ashow.set_defaults(func=cmd_account_show)
    aset = a.add_parser("set", help="change an account's settings")
    aset.add_argument("name", help="the account, as `smsgw account list` shows it")
    aset.add_argument(
        "--sender",
        metavar="NUMBER_OR_NAME",
        help="originating address (a name cannot be answered), or 'default' for [gateway] default_sender",
    )
    aset.add_argument("--monthly-limit", metavar="PARTS", help="SMS parts per calendar month, or 'none'")
    aset.add_argument("--daily-limit", metavar="PARTS", help="SMS parts per day, or 'none'")
    aset.add_argument(
        "--split-mode",
        choices=["concatenated", "separate"],
        help="a long text as one concatenated SMS or as independent SMS (default concatenated)",
    )
    aset.add_argument("--transliterate", choices=["on", "off"], help="Polish letters to ASCII to stay in GSM")
    aset.add_argument("--overflow", choices=["truncate", "reject"], help="text over the part limit")
    aset.add_argument(
        "--validity-hours",
        metavar="HOURS",
        help=f"how long an SMS may wait for delivery (at most {MAX_VALIDITY_HOURS}),"
        " or 'default' for [gateway] validity_hours",
    )
    aset.add_argument(
        "--end-marker",
        action=EndMarker,
        metavar="TEXT",
        help="a line holding only TEXT (one line, at most"
        f" {END_MARKER_MAX} characters) ends the SMS text, or 'default' for [gateway] end_marker (END);"
        " a marker of dashes works as --end-marker=--- or --end-marker ---, -- too",
    )
    aset.add_argument(
        "--cut-from",
        action="append",
        default=[],
        metavar="PHRASE",
        help="the SMS text ends above the first line that starts with PHRASE (case and spacing aside,"
        f" at least {CUT_FROM_MIN} characters), e.g. the start of the confidentiality clause the"
        " company's mail server appends: --cut-from 'Treść tej wiadomości' (may be repeated; added to"
        " the account's phrases)",
    )
    aset.add_argument(
        "--remove-cut-from",
        action="append",
        default=[],
        metavar="PHRASE",
        help="take PHRASE off the account's cut-from phrases (may be repeated)",
    )
    aset.add_argument(
        "--no-cut-from",
        action="store_true",
        help="drop all of the account's cut-from phrases (with --cut-from: replace them)",
    )
    aset.add_argument("--confirm", choices=["on", "off"], help="acceptance confirmation email")
    aset.add_argument(
        "--dlr-mail",
        choices=["none", "failed", "all"],
        help="which delivery outcomes are mailed to the sender (default failed)",
    )
    aset.add_argument(
        "--notify-address",
        metavar="EMAIL",
        help="bounces and every notice about a mail's SMS (not sent, held, cut short, confirmed, delivered)"
        " go here instead of to the sender; 'none' (or 'default') sends them to the sender",
    )
    aset.add_argument(
        "--inbound-address",
        metavar="EMAIL",
        help="an SMS to the account's own --sender number that answers no conversation (a customer"
        " texting first, or after the reply window) is mailed here, from the phone, so that a Reply"
        " answers it; 'none' (default) sends it to [replies] fallback_address. Not for a number other"
        " accounts or the gateway's default sender share",
    )
    aset.add_argument(
        "--auto-generated",
        choices=["record", "send"],
        help="mail whose only machine sign is a monitoring system's (Auto-Submitted: auto-generated, as"
        " cron adds, or auto-notified; Precedence: list): 'record' (default) records it unsent, as other"
        " machine mail; 'send' sends it as SMS, for an account that exists for alerts. Auto-replies,"
        " out-of-office notices, bounces, receipts, recalls and the gateway's own mail are never sent",
    )
    aset.add_argument(
        "--countries",
        nargs="+",
        metavar="CC",
        help="send SMS only to numbers of these countries (ISO codes: --countries PL, --countries PL CZ);"
        " a number of another one is refused at RCPT, as a mistyped number to a costly destination"
        " abroad would be sent and billed; 'any' (default): every number the links serve",
    )
    aset.add_argument("--quiet-hours", metavar="HH:MM-HH:MM", help="hold bulk SMS in this window, or 'none'")
    aset.add_argument("--bulk", choices=["on", "off"], help="treat all of this account's mail as bulk")
    aset.add_argument(
        "--reply-window-days",
        metavar="DAYS",
        help="how long phones may answer this account's SMS, or 'default' for [replies] window_days",
    )
    aset.add_argument(
        "--billing-to", action="append", metavar="EMAIL", help="monthly billing file to (repeat; 'none': off)"
    )
    aset.add_argument(
        "--add-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="trust this client network on the relay port, e.g. 192.0.2.0/24 (may be repeated)",
    )
    aset.add_argument(
        "--remove-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="stop trusting this network, written as `account list` shows it (may be repeated)",
    )
    aset.set_defaults(func=cmd_account_set)
    asus = a.add_parser("suspend", help="refuse the account's mail and hold its waiting SMS until resumed")
    asus.add_argument("name", help="the account to suspend")
    asus.add_argument(
        "--reason",
        help="said to its senders in the refusal and shown in `account list`, one line of at most"
        f" {SUSPENSION_REASON_MAX} characters (default '{SUSPENSION_REASON_DEFAULT}'); on an account"
        " suspended already it replaces the reason, and without it the reason is kept",
    )
    asus.set_defaults(func=cmd_account_suspend)
    ares = a.add_parser("resume", help="lift a suspension")
    ares.add_argument("name", help="the suspended account")
    ares.set_defaults(func=cmd_account_resume)
    add_remove_command(a)

    u = sub.add_parser("user", help="addresses allowed to send").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    ua = u.add_parser("add", help="allow an address to send for an account")
    ua.add_argument("email", help="the address the user sends from (envelope sender), also the login")
    ua.add_argument("--account", required=True, metavar="NAME", help="the account the user sends for")
    ua.set_defaults(func=cmd_user_add)
    ul = u.add_parser("list", help="users, their account, whether a password is set, role and limits")
    ul.add_argument("--account", metavar="NAME", help="only this account's users (default: all)")
    ul.set_defaults(func=cmd_user_list)
    ur = u.add_parser("remove", help="stop an address from sending")
    ur.add_argument("email", help="the user's address")
    ur.set_defaults(func=cmd_user_remove)
    us = u.add_parser("set", help="per-user limits and web panel role")
    us.add_argument("email", help="the user's address")
    kept = "or 'none' for no limit (left out: unchanged)"
    us.add_argument("--monthly-limit", metavar="PARTS", help=f"SMS parts per calendar month, {kept}")
    us.add_argument("--daily-limit", metavar="PARTS", help=f"SMS parts per day, {kept}")
    us.add_argument(
        "--role",
        choices=["user", "admin", "operator"],
        help="web panel: admin = company admin of the user's account, operator = every account",
    )
    us.set_defaults(func=cmd_user_set)
    add_user_commands(u)
