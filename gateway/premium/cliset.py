"""`smsgw premium set`: a service changed (account, address, numbers, reply list), and what it says of
the SMS the service received before a move to another account.

Apart from gateway.premium.cli because a move has rules of its own to tell (the votes left behind,
those kept for a confirmation); cli registers it and holds the argument checks both use.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gateway.cli.audit import audited, changes
from gateway.cli.common import open_store, when

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.premium.repo import Service
    from gateway.store.db import Store


def cmd_set(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.premium import handlers
    from gateway.premium.cli import mail_address, named_service, premium_numbers

    store = open_store(cfg, must_exist=True)
    r = handlers.repo(store)
    with store.db.transaction():
        service = named_service(store, args.password)
        before = r.acl(service.id)
        changes: dict[str, Any] = {}
        if args.account:
            changes["account_id"] = store.accounts.get_account(args.account).id
            if changes["account_id"] != service.account_id:
                r.keep_as_it_was(service, before)  # who answers the votes it leaves behind
        if args.number or args.all_numbers:
            changes["numbers"] = " ".join(premium_numbers(cfg, [] if args.all_numbers else args.number))
        new_email = mail_address(cfg, args.email) if args.email else None
        if new_email and new_email.casefold() != service.email.casefold():
            changes.update(email=new_email, verified_at=None)
        if args.reply_acl:
            r.set_acl(service.id, [mail_address(cfg, a, "--reply-acl") for a in args.reply_acl])
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
    (`replylist`), never by the new account's users or its list. Those kept until the address
    confirms were mailed to nobody: they go with the service (`moves.kept_to`), and are counted.
    """
    from gateway.premium import handlers, moves

    r = handlers.repo(store)
    kept = moves.kept_count(r, before)
    if not kept:
        return _mailed_stay(cfg, store, before, acl)
    service = r.service(before.id)
    new = r.account_name(service.account_id)
    said = (
        f"the {kept} SMS kept until {service.email} confirms go with the service: mailed to it once it"
        f" does, billed to {new} (a month billed already as a correction) and answered by {new}"
    )
    if r.left_behind(before):
        said = f"{_mailed_stay(cfg, store, before, acl)}\n{said}"
    return said


def _mailed_stay(cfg: Config, store: Store, before: Service, acl: list[str]) -> str:
    """`_old_votes_stay`'s line for the SMS mailed to the old account's client."""
    from gateway import accountrules
    from gateway.premium import handlers
    from gateway.store import forwardsteps

    old = store.accounts.account_by_id(before.account_id)
    window = accountrules.reply_window_days(cfg, old.reply_window_days) * 86400
    # A step forward of the clock within the window is no time passed, as the daemon's answers count it.
    since = forwardsteps.window_start(store.db.conn, store.clock(), window)
    count, last = handlers.repo(store).answerable(before, since, cfg.premium.answers_per_mo)
    new = store.accounts.account_by_id(handlers.repo(store).service(before.id).account_id).name
    until = (
        f" (the {count} still answerable until {when(forwardsteps.window_end(store.db.conn, last, window))})"
        if count and last is not None
        else ""
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
