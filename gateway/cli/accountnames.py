"""Account names an admin gets wrong: `account add acme` beside an existing `ACME` (a second
account, as names are told apart by case everywhere: the panel, billing files, [[account]] blocks),
and `account remove` to take back an account added by mistake."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.common import CliError, open_store

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store


def warn_of_lookalikes(store: Store, name: str) -> None:
    """Said once a new account is added (`gateway.lookalikes`), with the way back."""
    from gateway.lookalikes import lookalike_note

    note = lookalike_note((a.name for a in store.accounts.list_accounts()), name)
    if note is not None:
        print(
            f"smsgw: warning: {note}; if it was a typo: smsgw account remove {shlex.quote(name)}",
            file=sys.stderr,
        )


def cmd_account_remove(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.audit import audited
    from gateway.conversations import queries as conversations
    from gateway.premium import queries as premium
    from gateway.store.accounts import Conflict
    from gateway.store.accountshares import AccountShare

    # What of the features' rows holds the account, and what of them goes with it: the store names none.
    features = (
        AccountShare(conversations.account_holds),
        AccountShare(premium.account_holds, premium.delete_gone_services),
    )

    store = open_store(cfg, must_exist=True)
    try:
        with store.db.transaction():
            # The command line's own rows of the account (a user added to it by mistake, a setting)
            # do not keep a mistake from being taken back: they stay, of no account (each names it),
            # as SQLite gives its id to the next account added. Undone with the rest if refused.
            acc = store.accounts.get_account(args.name)
            detach = "UPDATE audit SET account_id = NULL WHERE account_id = ? AND actor LIKE 'cli:%'"
            store.db.conn.execute(detach, (acc.id,))
            store.accounts.remove_account(args.name, features)
            audited(store, None, "account.remove", args.name)  # of no account: it is gone
    except Conflict as exc:
        raise CliError(
            f"{exc}; to stop its mail, suspend it instead: smsgw account suspend {shlex.quote(args.name)}"
        ) from exc
    print(f"account {args.name} removed")
    if left := unmailed_files(cfg, args.name):
        # Never mailed (a mailed bill refuses the removal): a month written again lists no such
        # account, yet its file would stay in `billing list` and the panel beside the summary.
        print(
            f"note: its billing file(s) written by hand and never mailed stay on disk and in the panel:"
            f" {', '.join(str(p) for p in left)}; delete them (no run writes them again)"
        )
    if any(seed.name == args.name for seed in cfg.account):
        # `adminrules.seed_accounts` creates a missing account at each start.
        print(
            f"note: the config's [[account]] block {args.name!r} adds it again at the daemon's next start:"
            " take the block out of the config"
        )
    return 0


def unmailed_files(cfg: Config, name: str) -> list[Path]:
    """The month files of account `name` on disk (those of an account removed were never mailed)."""
    from billing_reports.writer import file_name, month_dir, months

    found = (month_dir(cfg.state_dir, m, cfg.billing_dir) / file_name(name) for m in months(cfg.billing_dir))
    return [p for p in found if p.is_file()]


def add_remove_command(accounts: Any) -> None:
    remove = accounts.add_parser(
        "remove",
        help="remove an account added by mistake (refused once it has users, mail, SMS or a bill mailed)",
        description="Remove an account that has no users and no mail, SMS, answers, premium services,"
        " panel history or bill mailed (an account added by mistake); an account in use is refused, naming"
        " what it has: suspend it instead.",
    )
    remove.add_argument("name", help="the account, as `smsgw account list` shows it")
    remove.set_defaults(func=cmd_account_remove)
