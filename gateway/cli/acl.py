"""Admin commands for submission logins: `smsgw user passwd EMAIL` sets the password a user logs in with.

The password never appears on the command line (where `ps` and shell history would keep it): it
is read from a terminal without echo, or as one line from standard input for scripts. Only the
salted hash reaches the database.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any, TextIO

from gateway.cli.common import EXIT_USAGE, open_store

if TYPE_CHECKING:
    from gateway.config import Config


def add_user_commands(user_subparsers: Any) -> None:
    """Add `passwd` to the `smsgw user` command group built in gateway/cli.py."""
    p = user_subparsers.add_parser(
        "passwd",
        help="set a user's submission (SMTP AUTH) password",
        description="Reads the new password from the terminal (not echoed) or as one line from stdin.",
    )
    p.add_argument("email", help="the user's email address, which is also the login")
    p.set_defaults(func=cmd_user_passwd)


def read_new_password(stdin: TextIO | None = None) -> str:
    """The new password: prompted twice on a terminal, else the first line of stdin.

    Run from cron or a unit with standard input closed, Python has no sys.stdin at all: that, and
    an input that cannot be read (opened for writing only), is said as the ValueError the caller
    refuses with, not a traceback."""
    stream = stdin if stdin is not None else sys.stdin
    if stream is None:
        raise ValueError(
            "standard input is closed: type the password on a terminal, or give it as one line on"
            " stdin (e.g. from a file only you can read: `smsgw user passwd EMAIL < FILE`)"
        )
    try:
        if stream.isatty():
            first = getpass.getpass("New password: ")
            if getpass.getpass("Repeat new password: ") != first:
                raise ValueError("the two passwords differ")
            return first
        return stream.readline().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read the password from standard input: {exc.strerror or exc}") from exc


def _refuse(message: str) -> int:
    print(f"smsgw: {message}; nothing changed", file=sys.stderr)
    return EXIT_USAGE


def cmd_user_passwd(cfg: Config, args: argparse.Namespace) -> int:
    from acl.passwords import hash_password
    from gateway.adminrules import password_problem
    from gateway.cli.audit import audited
    from gateway.store.accounts import NotFound
    from gateway.web.initialpassword import forget_replaced

    # Only an existing database: a mistyped state_dir would get a new, empty one and "no user".
    store = open_store(cfg, must_exist=True)
    try:
        # Look the user up first, so that a typo in the address fails before anyone types a password.
        user = store.accounts.find_user(args.email)
        if user is None:
            raise NotFound(f"no user {args.email!r} (see `smsgw user list`)")
        try:
            password = read_new_password()
        except ValueError as exc:
            return _refuse(str(exc))
        if (problem := password_problem(password)) is not None:
            return _refuse(problem)
        digest = hash_password(password)
        with store.db.transaction():
            store.accounts.set_user(user.email, password_hash=digest)
            # Who set it and when; never the password nor its hash (the panel's row says the same).
            audited(store, user.account_id, "user.password", user.email)
    finally:
        store.close()
    print(f"password set for {user.email}; log in on the submission port with this address")
    if user.role != "user":  # an operator's password opens every account's pages: said, not implied
        reach = "every account" if user.role == "operator" else f"account {user.account}"
        print(
            f"note: {user.email} is {user.role} of the web panel: this password also logs in there,"
            f" over {reach}"
        )
    if (gone := forget_replaced(cfg.state_dir, user.password_hash)) is not None:
        print(f"removed {gone}: it held the password just replaced")
    return 0
