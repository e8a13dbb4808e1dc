"""`smsgw premium add|list|remove|set|verify|answers|stats`: premium services and what they earned.

Changes go through the store's transactions in the same SQLite file the daemon uses (WAL), so
they work while it runs; mail they queue (a confirmation, kept MOs sent to the fallback) is picked
up by the daemon's outbox worker within seconds.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gateway.cli.argtypes import list_limit
from gateway.cli.audit import audited
from gateway.cli.common import EXIT_USAGE, CliError, open_store, since_time, when
from gateway.premium.cliset import cmd_set
from gateway.premium.clistats import cmd_stats

# The premium package's handlers (and through them the store and the SMTP side) are imported by the
# commands that use them: adding the parsers (`smsgw --help` among others) imports none of them.
if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.premium.repo import Service
    from gateway.store.db import Store


def _password(value: str) -> str:
    from gateway.premium import passwords

    try:
        return passwords.normalise(value)
    except passwords.BadPassword as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def mail_address(cfg: Config, value: str, what: str = "--email") -> str:
    """A client's address, plain and off the gateway's domains: the confirmation and every SMS
    mailed to one there came back to the gateway, which refused it, so the service never confirmed
    and the public's paid SMS were kept for good."""
    from acl.accounts import wildcards_in
    from gateway import mailheaders
    from gateway.adminrules import mail_address_problem

    if not mailheaders.is_plain_address(value):
        raise CliError(f"{what} {value!r} is not a plain email address (user@example.com)", EXIT_USAGE)
    # Refused as `user add` refuses them: `*@example.com` was stored, and matched no answer's sender
    # (they are compared whole), nor could a confirmation reach it.
    if wild := wildcards_in(value):
        raise CliError(
            f"{what} {value!r} has a wildcard ({wild}): no address matches a pattern here, each"
            " is compared whole; give each mailbox's own address",
            EXIT_USAGE,
        )
    if (problem := mail_address_problem(cfg, value.strip())) is not None:
        raise CliError(f"{what} {problem}", EXIT_USAGE)
    return value.strip()


def premium_numbers(cfg: Config, values: list[str] | None) -> list[str]:
    configured = list(cfg.premium.tariffs)
    if not configured:
        raise CliError("no premium numbers are configured: add [premium] numbers = [...] to the config")
    for n in values or ():
        if n not in configured:
            raise CliError(
                f"--number {n} is not a configured premium number ({', '.join(configured)})", EXIT_USAGE
            )
    return list(dict.fromkeys(values or ()))


def named_service(store: Store, password: str) -> Service:
    from gateway.premium import handlers

    service = handlers.repo(store).active_service(_password(password))
    if service is None:
        raise CliError(f"no premium service {password.upper()}")
    return service


def cmd_add(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.premium import handlers

    password = _password(args.password)
    email = mail_address(cfg, args.email)
    acl = [mail_address(cfg, a, "--reply-acl") for a in args.reply_acl] or [email]
    numbers = premium_numbers(cfg, args.number)
    store = open_store(cfg, must_exist=True)
    account = store.accounts.get_account(args.account)
    r = handlers.repo(store)
    with store.db.transaction():
        if r.active_service(password) is not None:
            raise CliError(f"password {password} is taken (passwords are unique, whatever the case)")
        service = r.service(r.add_service(password, account.id, email, numbers, acl))
        confirm = handlers.ask_verification(store, cfg, service, account.name)
        shown = f"numbers {' '.join(numbers) or 'all'}, reply ACL {', '.join(acl)}"
        audited(store, account.id, "premium.add", f"{password} {account.name} {email} ({shown})")
    print(
        f"premium service {password} added for account {account.name}, numbers {' '.join(numbers) or 'all'}"
    )
    print(f"a confirmation was mailed to {email}; SMS are kept until it answers (or mails {confirm})")
    return 0


def cmd_list(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.premium import confirmation, handlers

    store = open_store(cfg, must_exist=True)
    r = handlers.repo(store)
    services = r.services()
    configured = cfg.premium.tariffs
    if not services:
        print("no premium services")
    for s in services:
        account = store.accounts.account_by_id(s.account_id).name
        if s.verified_at:
            state = f"confirmed {when(s.verified_at)}"
        else:
            u = confirmation.unconfirmed(store.db.conn, s, r.count_awaiting(s.id), store.clock())
            state = f"UNCONFIRMED, {u.kept} SMS kept"
            if u.refused is not None or u.expired_at is not None:
                state += f": {u.why(when)}; {u.todo()}"
        # A number the config no longer has: no MO comes to the service by it (`check-config` says so).
        numbers = " ".join(n if n in configured else f"{n} (not configured)" for n in s.number_list)
        print(
            f"{s.password}  account {account}  → {s.email}  numbers {numbers or 'all'}"
            f"  reply ACL {', '.join(r.acl(s.id))}  {state}"
        )
    return 0


def cmd_remove(cfg: Config, args: argparse.Namespace) -> int:
    from gateway import accountrules
    from gateway.premium import handlers
    from gateway.store import forwardsteps

    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        service = named_service(store, args.password)
        handlers.repo(store).update_service(service.id, removed_at=store.clock())
        released = handlers.release_awaiting(
            store, cfg, service, "the service was removed before its address confirmed"
        )
        sent = f"; {released} kept SMS sent to the fallback address" if released else ""
        audited(store, service.account_id, "premium.remove", f"{service.password} {service.email}{sent}")
    note = f"; {released} kept SMS sent to the fallback address" if released else ""
    print(f"premium service {service.password} removed (its records stay for billing){note}")
    # Each account's votes by its own reply window: those of an account the service moved away from
    # stay that account's client's to answer (`replylist`), and said nothing of, they were a surprise.
    # A step forward of the clock within the window is no time passed, as the daemon's answers count it.
    r = handlers.repo(store)
    for account_id in r.vote_accounts(service):
        account = store.accounts.account_by_id(account_id)
        window = accountrules.reply_window_days(cfg, account.reply_window_days) * 86400
        since = forwardsteps.window_start(store.db.conn, store.clock(), window)
        count, last = r.answerable(service, since, cfg.premium.answers_per_mo, account_id)
        if not count or last is None:
            continue
        whose = "its client" if account_id == service.account_id else f"account {account.name}'s client"
        before = "" if account_id == service.account_id else " before the service moved"
        print(
            f"{whose} may still answer the {count} SMS mailed to it{before} in the reply window,"
            f" as before, until {when(forwardsteps.window_end(store.db.conn, last, window))}"
        )
    return 0


def _confirmation_state(store: Store, service: Service) -> int:
    """`verify` without `--resend`: whether the address confirmed, changing nothing.

    A resend replaces the token the client may be about to use, so it is never done by a bare
    `verify`; an admin asked why a client's SMS do not arrive first needs to know whether they wait.
    """
    from gateway.premium import confirmation, handlers

    if service.verified_at is not None:
        print(f"premium service {service.password}: {service.email} confirmed {when(service.verified_at)}")
        return 0
    kept = handlers.repo(store).count_awaiting(service.id)
    u = confirmation.unconfirmed(store.db.conn, service, kept, store.clock())
    print(f"premium service {service.password}: {u.why(when)}; {kept} SMS kept until it does")
    print(u.todo())
    return 0


def cmd_verify(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.premium import handlers

    store = open_store(cfg, must_exist=True)
    if not args.resend:
        return _confirmation_state(store, named_service(store, args.password))
    with store.db.transaction():
        service = named_service(store, args.password)
        if service.verified_at is not None:
            raise CliError(f"{service.email} already confirmed premium service {service.password}")
        account = store.accounts.account_by_id(service.account_id).name
        handlers.ask_verification(store, cfg, service, account)
        # The token stays out of the row: with it anyone reading the trail could confirm the address.
        detail = f"{service.password} {service.email}: a new confirmation mailed, earlier ones no longer work"
        audited(store, service.account_id, "premium.verify", detail)
    print(f"a new confirmation was mailed to {service.email}; earlier ones no longer work")
    return 0


def cmd_answers(cfg: Config, args: argparse.Namespace) -> int:
    """What became of the clients' answers, newest first: a refused one (a sender off the reply
    list, no free answer left, the window passed, the account suspended, the identical-text rule)
    was told only to the client's mail server, which support cannot read."""
    from gateway.premium import handlers

    password = _password(args.password) if args.password else None
    since = since_time(cfg, args.since) if args.since else None
    store = open_store(cfg, must_exist=True)
    repo = handlers.repo(store)
    rows = repo.answers_list(password, since, args.refused, args.limit)
    if not rows and password is not None and not repo.had_password(password):
        # Not "no answers" with exit 0, as though the service had none: a typo is told as `premium remove`.
        raise CliError(f"no premium service {password}")
    if not rows:
        print(
            "no answers to premium SMS"
            + (f" of {password}" if password else "")
            + (f" since {when(since)}" if since else "")
        )
        return 0
    # The account: a password removed and added again for another account lists both accounts' answers.
    print(f"{'time':<21}{'service':<9}{'account':<13}{'number':<8}{'sender':<32}{'phone':<16}outcome")
    for a in rows:
        outcome = f"{a.state}: {a.reason}" if a.reason else a.state
        service = f"{when(a.created_at):<21}{a.password or '-':<9}{a.account:<12} {a.number:<8}"
        print(f"{service}{a.sender or '-':<31} {a.phone:<15} {outcome}")
    if len(rows) == args.limit:
        print(f"(the newest {args.limit}; --limit or --since for others)")
    return 0


def add_commands(sub: Any) -> None:
    """Register `premium` on the `smsgw` parser's subcommands."""
    p = sub.add_parser("premium", help="premium-rate services (KPxxx passwords)")
    s = p.add_subparsers(dest="sub", required=True, metavar="ACTION")
    password_help = "the service's password: KP and three letters or digits, any case"
    add = s.add_parser("add", help="a service: password, account, address (mailed a confirmation)")
    add.add_argument("password", metavar="KPxxx", help=f"{password_help}, not in use by another service")
    add.add_argument("--account", required=True, metavar="NAME", help="the account its money is billed to")
    add.add_argument("--email", required=True, help="where its SMS are mailed, once confirmed")
    add.add_argument("--reply-acl", action="append", default=[], metavar="ADDR",
                     help="may answer for free (repeat; default: the --email address)")  # fmt: skip
    add.add_argument(
        "--number", action="append", metavar="NUMBER", help="premium number (repeat; default: all)"
    )
    add.set_defaults(func=cmd_add)
    s.add_parser("list", help="services, their addresses and confirmation state").set_defaults(func=cmd_list)
    rm = s.add_parser(
        "remove",
        help="stop a service: its password is unknown from now on (its money records stay; the SMS it"
        " received may still be answered within the reply window)",
    )
    rm.add_argument("password", metavar="KPxxx", help=password_help)
    rm.set_defaults(func=cmd_remove)
    st = s.add_parser("set", help="change a service; a new --email is confirmed again")
    st.add_argument("password", metavar="KPxxx", help=password_help)
    st.add_argument("--account", metavar="NAME", help="bill it to this account (default: unchanged)")
    st.add_argument("--email", help="mail its SMS here, after this address confirms (default: unchanged)")
    st.add_argument("--reply-acl", action="append", metavar="ADDR", help="replaces the reply ACL (repeat)")
    st.add_argument("--number", action="append", metavar="NUMBER", help="replaces the numbers (repeat)")
    st.add_argument("--all-numbers", action="store_true", help="run on every configured premium number")
    st.set_defaults(func=cmd_set)
    v = s.add_parser(
        "verify", help="whether the address confirmed; --resend mails a new confirmation (a new token)"
    )
    v.add_argument("password", metavar="KPxxx", help=password_help)
    v.add_argument(
        "--resend",
        action="store_true",
        help="mail a new confirmation; the earlier ones stop working (default: only show the state)",
    )
    v.set_defaults(func=cmd_verify)
    an = s.add_parser(
        "answers",
        help="the clients' answers, newest first: time, service, account, sender, phone, outcome and why",
    )
    an.add_argument(
        "password", nargs="?", metavar="KPxxx", help=f"only those of this service ({password_help})"
    )
    an.add_argument(
        "--since",
        metavar="WHEN",
        help="since 7d, 12h, 30m ago, or YYYY-MM-DD[ HH:MM] in [gateway] timezone (default: ever)",
    )
    an.add_argument("--refused", action="store_true", help="only the refused ones")
    an.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    an.set_defaults(func=cmd_answers)
    stats = s.add_parser(
        "stats", help="MOs, price and commission per service and number, with the month's billing corrections"
    )
    stats.add_argument(
        "--month", required=True, metavar="YYYY-MM", help="the calendar month, in [gateway] timezone"
    )
    stats.set_defaults(func=cmd_stats)
