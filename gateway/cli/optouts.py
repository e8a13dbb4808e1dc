"""`smsgw optout add|remove|list`: the numbers that asked for no more SMS (R-2.4), as an admin
files them by hand beside the STOP answers the gateway files itself."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gateway.cli.common import EXIT_USAGE, CliError, open_store, when

if TYPE_CHECKING:
    from gateway.config import Config


def _number(cfg: Config, value: str) -> str:
    from gateway.smtp.addressing import BadNumber, to_e164

    try:
        return to_e164(value, cfg.gateway.default_region)
    except BadNumber as exc:
        raise CliError(f"{value!r} is not a phone number: {exc}", EXIT_USAGE) from exc


def cmd_optout_add(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.audit import ARROW, audited
    from gateway.store.policy import ADDED, MADE_ADMINS

    number = _number(cfg, args.number)
    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        done = store.policy.add_optout(number, word=None, source="admin")
        # The number alone, as the panel's rows (`gateway.web.repo.optouts_page` reads them); of no
        # account: the list is the installation's.
        if done == ADDED:
            audited(store, None, "optout.add", number)
        elif done == MADE_ADMINS:
            audited(store, None, "optout.add", f"{number} (by the phone's STOP {ARROW} the admin's)")
    if done == ADDED:
        print(f"{number} added to the opt-out list")
    elif done == MADE_ADMINS:
        # "Already on" read as done, and the phone's START then took it off the list.
        print(
            f"{number} was on the opt-out list by the phone's STOP; now kept as the admin's:"
            " START will not remove it"
        )
    else:
        print(f"{number} already on the opt-out list")
    return 0


def cmd_optout_remove(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.audit import ARROW, audited

    number = _number(cfg, args.number)
    store = open_store(cfg, must_exist=True)
    with store.db.transaction():
        row = store.db.conn.execute("SELECT source, word FROM optouts WHERE number = ?", (number,)).fetchone()
        if row is None or not store.policy.remove_optout(number):
            raise CliError(f"{number} is not on the opt-out list")
        by = f"{row[0]}, {row[1]}" if row[1] else row[0]
        audited(store, None, "optout.remove", f"{number} (on the list by {by} {ARROW} off)")
    print(f"{number} removed from the opt-out list")
    return 0


def cmd_optout_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = open_store(cfg, must_exist=True).policy.list_optouts()
    if not rows:
        print("no opt-outs")
    for r in rows:
        word = f" ({r['word']})" if r["word"] else ""
        print(f"{r['number']:<16} {when(r['created_at'])}  by {r['source']}{word}")
    return 0


def add_optout_commands(sub: Any) -> None:
    o = sub.add_parser("optout", help="numbers that asked for no more SMS").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    for name, func, text in (
        ("add", cmd_optout_add, "stop all SMS to a number"),
        ("remove", cmd_optout_remove, "allow SMS to a number again"),
    ):
        op = o.add_parser(name, help=text)
        op.add_argument("number", help="the phone: +48601123456, or national as 601123456")
        op.set_defaults(func=func)
    o.add_parser("list", help="the numbers on the opt-out list").set_defaults(func=cmd_optout_list)
