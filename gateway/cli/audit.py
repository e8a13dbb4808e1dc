"""The command line's part of the audit trail (R-2.5): each change a command makes is recorded as the
panel's are, and `smsgw audit` lists the trail, the panel's rows and the command line's alike.

Without it an admin asked "who raised ACME's monthly limit, and when?" could answer only for
changes made in the panel; every one made on the server was nobody's.
"""

from __future__ import annotations

import argparse
import os
import pwd
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.argtypes import list_limit
from gateway.cli.common import open_store, say_zone, since_time, when
from gateway.cli.terminal import one_line

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

ARROW = "→"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (a container's)
        return f"uid {uid}"


def cli_actor() -> str:
    """`cli:` and the Unix user the command runs as; under sudo to root, who ran sudo too
    (`cli:root (sudo by anna)`), as root alone names nobody. The login of the terminal is named
    when it is someone else's (after `su`): the process cannot tell more.

    $SUDO_USER is believed only when the real user is root, as sudo to root leaves it, or when
    the parent process is sudo running as root (`sudo -u smsgw smsgw ...`, as the daemon's own
    refusal to run as root tells admins): anyone can set it (`SUDO_USER=ceo smsgw ...`), and a
    row saying the CEO made their change would be worse than none. Otherwise the row names the
    real user (the one who ran it, should it differ from the one it runs as)."""
    real, user = os.getuid(), _user(os.geteuid())
    by = os.environ.get("SUDO_USER", "").strip() if real == 0 or _sudo_parent() else ""
    if by and by != user:
        return f"cli:{user} (sudo by {by})"
    if real != os.geteuid():
        return f"cli:{user} (run by {_user(real)})"
    try:
        login = os.getlogin()
    except OSError:  # no controlling terminal: cron, systemd, a pipe
        login = ""
    if login and login != user:
        return f"cli:{user} (login {login})"
    return f"cli:{user}"


def _sudo_parent() -> bool:
    """The parent process is sudo with root's rights: a process a user made and named sudo runs as
    that user, so only the real sudo (or root, who may do anything) passes this."""
    try:
        status = Path(f"/proc/{os.getppid()}/status").read_text()
    except OSError:  # not Linux, or the parent gone
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uids = fields.get("Uid", "").split()
    return fields.get("Name", "").strip() == "sudo" and len(uids) > 1 and uids[1] == "0"


def audited(store: Store, account_id: int | None, action: str, detail: str = "") -> None:
    """The row of the change the caller is making, in its transaction: written only with it."""
    from gateway.store import audit

    if not store.db.in_transaction:
        raise RuntimeError("an audit row is written in the transaction of its change")
    audit.record(store.db.conn, store.clock(), cli_actor(), account_id, action, detail)


def shown(value: Any) -> str:
    """A setting as a row says it: None as `none`, a list's items one by one, booleans as on/off."""
    if value is None or value == () or value == []:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " | ".join(str(v) for v in value)
    return str(value)


def changes(before: dict[str, Any], after: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """`key old → new` for each of `keys` whose value differs."""
    return [
        f"{k} {shown(before.get(k))} {ARROW} {shown(after.get(k))}"
        for k in keys
        if shown(before.get(k)) != shown(after.get(k))
    ]


def cmd_audit(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.store import audit

    since = since_time(cfg, args.since) if args.since else None
    store = open_store(cfg, must_exist=True)
    account_id = store.accounts.get_account(args.account).id if args.account else None
    rows = audit.trail(store.db.conn, account_id=account_id, since=since, actor=args.actor, limit=args.limit)
    say_zone(rows, "no changes recorded")
    for r in rows:
        account = r["account"] or (f"account #{r['account_id']}" if r["account_id"] is not None else "-")
        # Each stored field on its line: a backup's file name, an account's or a login's text could
        # otherwise forge a line of the trail (`Printable` escapes the other controls).
        fields = [one_line(v) for v in (r["actor"], account, r["action"], r["detail"] or "")]
        print(f"{when(r['at'])}  {'  '.join(fields)}".rstrip())
    return 0


def add_audit_command(sub: Any) -> None:
    a = sub.add_parser(
        "audit",
        help="who changed what, when: the panel's changes and the command line's, newest first",
        description="The audit trail: every change made in the panel (by its login) or with these"
        " commands (by `cli:` and the Unix user; under sudo, who ran it), newest first, with times in"
        " [gateway] timezone. A change says its old and new value where the command knew both;"
        " never a password.",
    )
    a.add_argument("--account", metavar="NAME", help="only the changes of this account")
    a.add_argument("--since", metavar="WHEN", help="only changes since: 7d, 12h, 30m or YYYY-MM-DD[ HH:MM]")
    a.add_argument("--actor", metavar="WHO", help="only changes by an actor containing WHO (case aside)")
    a.add_argument("--limit", type=list_limit, default=100, help="at most this many lines (default 100)")
    a.set_defaults(func=cmd_audit)
