"""`smsgw account set NAME`: every setting an admin changes on an account, its options and their
audit row.

Apart from the other account commands because it is most of them: one option for each of the
account's settings, each read as `accountvalues` reads it before the store is opened (a usage error
touches nothing), then every change and its audit row in one transaction.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from gateway.adminrules import CUT_FROM_MIN, END_MARKER_MAX, MAX_VALIDITY_HOURS
from gateway.cli.argtypes import EndMarker
from gateway.cli.common import EXIT_USAGE, CliError, open_store

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.accountrecord import Account
    from gateway.store.db import Store


def cmd_account_set(cfg: Config, args: argparse.Namespace) -> int:
    from acl.quiet import parse_window
    from gateway.adminrules import billing_addresses, end_marker_problem, limits_note
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
        zero_limit_notes,
    )
    from gateway.cli.addressdoubts import one_label_problem
    from gateway.cli.audit import audited, changes
    from gateway.cli.networkowners import refuse_overlaps
    from gateway.cli.poolsender import pool_note
    from gateway.cli.stored import say_shared_senders
    from gateway.relaynets import stored_network

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
        settings["sender"] = args.sender = sender_value(cfg, args.sender)
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
    if problem := next(filter(None, map(one_label_problem, billing_to)), None):
        raise CliError(f"--billing-to: {problem}", EXIT_USAGE)
    unchanged = not settings and cut_from is None and not args.add_network and not args.remove_network
    if unchanged and args.billing_to is None:
        raise CliError("nothing to change; see `smsgw account set --help`", EXIT_USAGE)
    store = open_store(cfg, must_exist=True)  # after the arguments: a usage error touches nothing
    with store.db.transaction():  # every setting and its audit row, or nothing
        before = _recorded(store, store.accounts.get_account(args.name))
        if cut_from is not None:
            settings["cut_from"] = _cut_from_value(cut_from, store.accounts.get_account(args.name).cut_from)
        store.accounts.update_account(args.name, **settings)
        # As stored: a row from before zone ids were refused is read without its zone, not refused.
        stored = (stored_network(c) for c in store.accounts.get_account(args.name).networks)
        had = {str(n) for n in stored if n is not None}
        new = [net for net in add if net not in had]
        refuse_overlaps(store, args.name, new, "--add-network", shared=args.shared)
        acc = store.accounts.set_account_networks(args.name, add=add, remove=remove)
        if args.billing_to is not None:
            store.accounts.set_billing_addresses(args.name, billing_to)
        after = _recorded(store, acc)
        changed = changes(before, after, before)
        if changed:  # a setting given as it was changes nothing, and the trail says only what changed
            audited(store, acc.id, "account.set", f"{acc.name}: {', '.join(changed)}")
    for net in remove:
        if net not in had:  # said: "updated" alone read as if it had been removed
            print(f"note: {net} was not one of account {acc.name}'s networks")
    print(f"account {acc.name} {'updated' if changed else 'unchanged: it had these settings already'}")
    if before["billing_to"] and before["billing_to"] != after["billing_to"]:
        # --billing-to sets the whole list: a second one meant as an addition replaced the first unsaid.
        was, now = ", ".join(before["billing_to"]), ", ".join(after["billing_to"]) or "none"
        print(f"billing-to {was} → {now} (replaced: --billing-to sets the whole list, give every address)")
    if note := limits_note(acc.monthly_limit, acc.daily_limit):
        print(f"note: {note}")
    for note in zero_limit_notes(f"account {acc.name}", settings):
        print(f"note: {note}")
    say_if_unanswerable(args.sender)
    if "sender" in settings and (pooled := pool_note(cfg, acc.sender)) is not None:
        print(f"note: {pooled}")  # "updated" alone read as if the SMS went from it now
    if args.sender is not None:  # as `account add` says it: the answers go to whoever texted last
        say_shared_senders(cfg, acc.name)
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
    from gateway.adminrules import cut_from_list

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
    from gateway.adminrules import cut_from_list, cut_from_phrase

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


def add_set_command(a: Any) -> None:
    """Add `set` to the `smsgw account` command group built in `gateway.cli.admin`."""
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
    aset.add_argument(
        "--shared",
        action="store_true",
        help="take an --add-network that is another account's too: one mail server there serves both",
    )
    aset.set_defaults(func=cmd_account_set)
