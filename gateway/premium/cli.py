"""`smsgw premium add|list|remove|set|verify|answers|stats`: premium services and what they earned.

Changes go through the store's transactions in the same SQLite file the daemon uses (WAL), so
they work while it runs; mail they queue (a confirmation, kept MOs sent to the fallback) is picked
up by the daemon's outbox worker within seconds.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gateway.cli.argtypes import list_limit
from gateway.cli.audit import audited, changes
from gateway.cli.common import EXIT_USAGE, CliError, open_store, since_time, when
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


def _email(cfg: Config, value: str, what: str = "--email") -> str:
    """A client's address, plain and off the gateway's domains: the confirmation and every SMS
    mailed to one there came back to the gateway, which refused it, so the service never confirmed
    and the public's paid SMS were kept for good."""
    from gateway import mailheaders
    from gateway.adminrules import mail_address_problem

    if not mailheaders.is_plain_address(value):
        raise CliError(f"{what} {value!r} is not a plain email address (user@example.com)", EXIT_USAGE)
    if (problem := mail_address_problem(cfg, value.strip())) is not None:
        raise CliError(f"{what} {problem}", EXIT_USAGE)
    return value.strip()


def _numbers(cfg: Config, values: list[str] | None) -> list[str]:
    configured = list(cfg.premium.tariffs)
    if not configured:
        raise CliError("no premium numbers are configured: add [premium] numbers = [...] to the config")
    for n in values or ():
        if n not in configured:
            raise CliError(
                f"--number {n} is not a configured premium number ({', '.join(configured)})", EXIT_USAGE
            )
    return list(dict.fromkeys(values or ()))


def _service(store: Store, password: str) -> Service:
    from gateway.premium import handlers

    service = handlers.repo(store).active_service(_password(password))
    if service is None:
        raise CliError(f"no premium service {password.upper()}")
    return service


def cmd_add(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.premium import handlers

    password = _password(args.password)
    email = _email(cfg, args.email)
    acl = [_email(cfg, a, "--reply-acl") for a in args.reply_acl] or [email]
    numbers = _numbers(cfg, args.number)
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
        print(
            f"{s.password}  account {account}  → {s.email}  numbers {' '.join(s.number_list) or 'all'}"
            f"  reply ACL {', '.join(r.acl(s.id))}  {state}"
        )
    return 0


def cmd_remove(cfg: Config, args: argparse.Namespace) -> int:
    from gateway import accountrules
    from gateway.premium import handlers

    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        service = _service(store, args.password)
        handlers.repo(store).update_service(service.id, removed_at=store.clock())
        released = handlers.release_awaiting(
            store, cfg, service, "the service was removed before its address confirmed"
        )
        sent = f"; {released} kept SMS sent to the fallback address" if released else ""
        audited(store, service.account_id, "premium.remove", f"{service.password} {service.email}{sent}")
    note = f"; {released} kept SMS sent to the fallback address" if released else ""
    print(f"premium service {service.password} removed (its records stay for billing){note}")
    account = store.accounts.account_by_id(service.account_id)
    window = accountrules.reply_window_days(cfg, account.reply_window_days) * 86400
    count, last = handlers.repo(store).answerable(service, store.clock() - window, cfg.premium.answers_per_mo)
    if count and last is not None:
        print(
            f"its client may still answer the {count} SMS mailed to it in the reply window,"
            f" as before, until {when(last + window)}"
        )
    return 0


def cmd_set(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.premium import handlers

    store = open_store(cfg, must_exist=True)
    r = handlers.repo(store)
    with store.db.transaction():
        service = _service(store, args.password)
        before = r.acl(service.id)
        changes: dict[str, Any] = {}
        if args.account:
            changes["account_id"] = store.accounts.get_account(args.account).id
            if changes["account_id"] != service.account_id:
                r.keep_as_it_was(service, before)  # who answers the votes it leaves behind
        if args.number or args.all_numbers:
            changes["numbers"] = " ".join(_numbers(cfg, [] if args.all_numbers else args.number))
        new_email = _email(cfg, args.email) if args.email else None
        if new_email and new_email.casefold() != service.email.casefold():
            changes.update(email=new_email, verified_at=None)
        if args.reply_acl:
            r.set_acl(service.id, [_email(cfg, a, "--reply-acl") for a in args.reply_acl])
        elif "email" in changes:
            # The old address answered as the destination (`add` puts it on the list): the new one
            # takes its place, or every answer from the new address would be refused.
            old = service.email.casefold()
            acl = r.acl(service.id)
            if any(a.casefold() == old for a in acl):
                r.set_acl(service.id, [new_email if a.casefold() == old else a for a in acl])
        if changes:
            r.update_service(service.id, **changes)
        if "email" in changes:
            account = store.accounts.account_by_id(r.service(service.id).account_id).name
            handlers.ask_verification(store, cfg, r.service(service.id), account)
        detail = _set_detail(store, service, r.service(service.id), before, r.acl(service.id))
        if detail is not None:  # the same address or list given again changed nothing: no row
            audited(store, r.service(service.id).account_id, "premium.set", detail)
    print(f"premium service {service.password} updated")
    moved = changes.get("account_id", service.account_id) != service.account_id
    if moved:
        print(_old_votes_stay(cfg, store, service, before))
    if "email" in changes:
        print(f"a confirmation was mailed to {new_email}; SMS are kept until it answers")
    if "email" in changes or args.reply_acl:
        after = r.acl(service.id)
        shown = ", ".join(after) or "(empty: nobody may answer)"
        if after == before:
            print(f"reply list: {shown} (unchanged)")
        else:
            # Said, not done in silence: an address taken off may be the one the client answers from.
            print(f"reply list: {shown} (was {', '.join(before) or 'empty'})")
            gone = [a for a in before if a.casefold() not in {b.casefold() for b in after}]
            # After a move they still answer the SMS received before it (`_old_votes_stay`).
            since = " the SMS received from now on" if moved else ""
            if gone:
                print(
                    f"no longer may answer{since}: {', '.join(gone)}"
                    " (--reply-acl to list every address that may)"
                )
    return 0


def _old_votes_stay(cfg: Config, store: Store, before: Service, acl: list[str]) -> str:
    """What `premium set --account` leaves as it was: the SMS received before stay the old account's.

    Said, as their answers now follow rules the admin did not just set: billed to the old account,
    refused while it is suspended, within its reply window, and answered by the reply list they had
    (`replylist`), never by the new account's users or its list.
    """
    from gateway import accountrules
    from gateway.premium import handlers

    old = store.accounts.account_by_id(before.account_id)
    window = accountrules.reply_window_days(cfg, old.reply_window_days) * 86400
    count, last = handlers.repo(store).answerable(before, store.clock() - window, cfg.premium.answers_per_mo)
    new = store.accounts.account_by_id(handlers.repo(store).service(before.id).account_id).name
    until = (
        f" (the {count} still answerable until {when(last + window)})" if count and last is not None else ""
    )
    return (
        f"the SMS it received before stay {old.name}'s{until}: their answers are billed to {old.name},"
        f" refused while {old.name} is suspended, and {new}'s users may not answer them; they are answered"
        f" from the reply list they had: {', '.join(acl) or '(empty: nobody)'}"
    )


def _set_detail(
    store: Store, old: Service, new: Service, acl_before: list[str], acl_after: list[str]
) -> str | None:
    """`premium set`'s audit row: each thing changed, old → new; None when nothing did."""
    name = store.accounts.account_by_id
    before = {
        "account": name(old.account_id).name,
        "numbers": " ".join(old.number_list) or "all",
        "email": old.email,
        "reply ACL": acl_before,
    }
    after = {
        "account": name(new.account_id).name,
        "numbers": " ".join(new.number_list) or "all",
        "email": new.email,
        "reply ACL": acl_after,
    }
    changed = changes(before, after, before)
    return f"{old.password}: {', '.join(changed)}" if changed else None


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
        return _confirmation_state(store, _service(store, args.password))
    with store.db.transaction():
        service = _service(store, args.password)
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
    rows = handlers.repo(store).answers_list(password, since, args.refused, args.limit)
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
