"""Admin commands: accounts, users and their limits (`smsgw account|user ...`); opt-outs in `optouts`.

What the admin reads back (`account list|show`, users' limits) is in `gateway.cli.accountview`;
`account set`, an option for each setting, in `gateway.cli.accountset`.

They change rows through the store's verbs in the same SQLite file the daemon uses (WAL), so they
work while it runs and the daemon sees each change on the next mail. Only `account add`, the first
command of a new install, may create the database, and only in a state directory that exists; every
other one refuses a missing database (a mistyped `state_dir`) instead of writing to a fresh one the
daemon never reads.
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from gateway.adminrules import SUSPENSION_REASON_DEFAULT, SUSPENSION_REASON_MAX
from gateway.cli.accountnames import add_remove_command
from gateway.cli.accountset import add_set_command
from gateway.cli.accountview import cmd_account_list, cmd_account_show, cmd_user_list
from gateway.cli.acl import add_user_commands
from gateway.cli.argtypes import account_name
from gateway.cli.common import EXIT_USAGE, CliError, open_store, when

if TYPE_CHECKING:
    from gateway.config import Config


def cmd_account_add(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.accountnames import warn_of_lookalikes
    from gateway.cli.accountvalues import networks_value, say_if_unanswerable, sender_value
    from gateway.cli.audit import audited, shown
    from gateway.cli.networkowners import refuse_overlaps
    from gateway.cli.poolsender import pool_note
    from gateway.cli.stored import say_shared_senders
    from gateway.printalike import account_name_clash

    args.relay_network = networks_value(args.relay_network)
    if args.sender is not None:
        args.sender = sender_value(cfg, args.sender)
    store = open_store(cfg)
    with store.db.transaction():
        names = (a.name for a in store.accounts.list_accounts())
        if (clash := account_name_clash(names, args.name)) is not None:
            raise CliError(clash, EXIT_USAGE)
        refuse_overlaps(store, args.name, args.relay_network, "--relay-network", shared=args.shared)
        acc = store.accounts.add_account(args.name, networks=args.relay_network, sender=args.sender)
        # Of no account, as the panel's: a row of its own would keep `account remove` from taking
        # back a typo.
        settings = f"networks {shown(acc.networks)}, sender {shown(acc.sender)}"
        audited(store, None, "account.add", f"{acc.name} ({settings})")
    warn_of_lookalikes(store, acc.name)
    print(f"account {acc.name} added (networks: {', '.join(acc.networks) or 'none'})")
    say_if_unanswerable(args.sender)
    if args.sender is not None and (pooled := pool_note(cfg, acc.sender)) is not None:
        print(f"note: {pooled}")  # as `account set` says it
    say_shared_senders(cfg, acc.name)
    return 0


def _reason(value: str | None) -> str | None:
    """`--reason`, trimmed as the panel trims it; None (also for "") keeps a suspension's reason."""
    from gateway.adminrules import suspension_reason_problem

    reason = (value or "").strip()
    if reason and (problem := suspension_reason_problem(reason)) is not None:
        raise CliError(f"--reason: {problem}", EXIT_USAGE)
    return reason or None


def cmd_account_suspend(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.adminrules import suspend
    from gateway.cli.audit import ARROW, audited

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
    from gateway.cli.audit import ARROW, audited

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
    from gateway.adminrules import limits_note, no_password_note
    from gateway.cli.accountvalues import limit_option, zero_limit_notes
    from gateway.cli.audit import audited, changes

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
        changed = changes(before, fields, fields)
        if changed:  # as `account set`: a limit or role given as it was is no change to audit
            audited(store, user.account_id, "user.set", f"{user.email}: {', '.join(changed)}")
    print(f"user {user.email} {'updated' if changed else 'unchanged: it had these settings already'}")
    if old is not None and old.role == "operator" and user.role != "operator":
        _last_operator_note(store)
    if note := limits_note(user.monthly_limit, user.daily_limit):
        print(f"note: {note}")
    for note in zero_limit_notes(f"user {user.email}", fields):
        print(f"note: {note}")
    if args.role is not None and (note := no_password_note(user.role, user.password_hash)):
        print(f"note: {note}")
    return 0


def cmd_user_add(cfg: Config, args: argparse.Namespace) -> int:
    from acl.accounts import user_address_problem
    from gateway.adminrules import mail_address_problem
    from gateway.cli.addressdoubts import one_label_problem, typo_of, unicode_form
    from gateway.cli.audit import audited

    # The panel's one check, which names the cause (a letter outside ASCII, a Unicode domain, the length).
    if (problem := user_address_problem(args.email) or one_label_problem(args.email)) is not None:
        raise CliError(f"EMAIL {problem}", EXIT_USAGE)
    if (problem := mail_address_problem(cfg, args.email)) is not None:
        # Answers by SMS and the gateway's notices go to the user's address: on the gateway's own
        # domain they come back to it and are refused, and the user never sees one.
        raise CliError(f"EMAIL {problem}", EXIT_USAGE)
    store = open_store(cfg, must_exist=True)
    store.accounts.get_account(args.account)  # a missing one is said first, as add_user says it
    if (known := store.accounts.find_user(args.email)) is not None:  # the store says only "exists"
        there = "that account" if known.account == args.account else f"account {known.account}"
        move = (
            ""
            if known.account == args.account
            else f"; to move it: smsgw user remove {known.email} && smsgw user add {known.email}"
            f" --account {shlex.quote(args.account)} (its password, role and limits go with the removal)"
        )
        raise CliError(f"user {known.email!r} exists already, in {there}{move}")
    others = [u.email for u in store.accounts.list_users(args.account)]
    with store.db.transaction():
        user = store.accounts.add_user(args.email, args.account)
        audited(store, user.account_id, "user.add", f"{user.email} (account {user.account})")
    print(f"user {user.email} added to account {user.account}")
    if (meant := typo_of(user.email, others)) is not None:
        reads = unicode_form(user.email.rpartition("@")[2])
        print(
            f"note: {user.email}'s domain{f' (it reads {reads})' if reads else ''} is none of account"
            f" {user.account}'s other users' and looks like {meant}: a typo? `smsgw user remove"
            f" {user.email}` undoes it"
        )
    return 0


def cmd_user_remove(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.audit import audited

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
    if user is not None and user.role == "operator":
        _last_operator_note(store)
    from gateway.web.initialpassword import forget_replaced

    # The first operator's password file outlived its login: kept until a start, and for good when no
    # operator was left (a start then writes none), readable by whoever could read the state directory.
    if user is not None and (gone := forget_replaced(cfg.state_dir, user.password_hash)) is not None:
        print(f"removed {gone}: it held the password of the login removed")
    return 0


def _last_operator_note(store: Any) -> None:
    """Said when the last operator goes: no start makes another one (`gateway.web.server.first_operator`
    makes the first only), and the panel's operator pages are then nobody's."""
    if not store.accounts.has_role("operator"):
        print(
            "note: no operator is left: nobody can use the panel's operator pages;"
            " `smsgw user set EMAIL --role operator` makes one"
        )


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
        "--shared",
        action="store_true",
        help="take a --relay-network that is another account's too: one mail server there serves both",
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
    add_set_command(a)
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
