"""`smsgw auth list|unlock`: the submission port's login locks, seen and lifted from a shell.

The locks live in the daemon's memory, and these commands run in another process. `unlock`
therefore leaves a request in the database, which the daemon reads when it is about to refuse
that address or login (so the next try goes through, without a restart); `list` reads the locks
the daemon writes into its status file every few seconds.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from gateway.cli.common import EXIT_USAGE, CliError, open_store, when

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

NO_USER = "a login that names no user"  # an unlock's audit row, for a login that names no user

KINDS = {
    "pair": "this login from this address",
    "address": "every login from this address but those that succeeded from it lately",
    "login": "this login from every address",
}


def cmd_auth_list(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.adminrules import age
    from gateway.cli.status import active_locks, daemon_state
    from gateway.housekeeping import read_status

    status = read_status(cfg.state_dir)
    now = time.time()
    down = daemon_state(status, now)
    if down is not None or status is None:
        print(f"daemon {down}: no locks (they are kept in the running daemon's memory)")
        return 0
    locks = active_locks(status, now)
    elapsed = now - float(status.get("updated_at", now))  # what the file's seconds_left are behind
    # The file is the daemon's of a moment ago: a lock of the last seconds is not in it yet.
    as_of = f"as of {when(status.get('updated_at'))[-8:]} (the daemon writes its locks every 2 s)"
    if not locks:
        print(f"no logins locked {as_of}")
        return 0
    requested = _unlock_requests(cfg)
    print(f"logins locked {as_of}:")
    for lock in locks:
        who = " ".join(f"{k} {lock[k]}" for k in ("address", "login") if lock.get(k))
        # The daemon lifts a lock at the next login attempt after `auth unlock`, not before.
        pending = any(_lifts(lock, t) and at >= float(lock.get("locked_at", 0)) for t, at in requested)
        print(
            f"{who:<50} locked {age(lock['seconds_left'] - elapsed)} more"
            f" ({KINDS.get(lock['kind'], lock['kind'])}; lockout {lock['strikes']} in a row)"
            + (" (unlock requested: lifted at the next login attempt)" if pending else "")
        )
    print("lift one with `smsgw auth unlock ADDRESS` or `smsgw auth unlock EMAIL`")
    if any(str(lock.get("login") or "").startswith("[unknown login") for lock in locks):
        # What was typed may be a password (in the user-name field), so the daemon never shows it.
        print("a login in [brackets] names no user and is not shown as typed: lift it by its address")
    return 0


def _unlock_requests(cfg: Config) -> list[tuple[str, float]]:
    """(target, requested at) of the unlock requests of the last day; none when the database cannot be
    read here (as root in the service's state_dir): the marks they give are a help, not the list."""
    try:
        store = open_store(cfg, must_exist=True)
    except CliError:
        return []
    try:
        return [(target, float(at)) for _id, target, at in store.admin.auth_unlocks_after(0)]
    finally:
        store.close()


def cmd_auth_unlock(cfg: Config, args: argparse.Namespace) -> int:
    from acl.logins import ALL, shown_target, unlock_target
    from gateway.cli.audit import audited

    targets = args.target or [ALL]
    try:
        stored = [unlock_target(t) for t in targets]
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    from gateway.cli.status import active_locks, daemon_state
    from gateway.housekeeping import read_status

    status = read_status(cfg.state_dir)
    down = daemon_state(status, time.time())
    if down is not None or status is None:
        # Said otherwise, an admin believes they lifted a lock that a start would not bring back anyway.
        print(f"daemon {down or 'not running'}: no locks to lift (they live in the running daemon's memory)")
        return 0
    store = open_store(cfg, must_exist=True)
    try:
        with store.db.transaction():  # the requests and their audit row, or neither
            for target in stored:
                store.admin.request_auth_unlock(target)
            audited(store, None, "auth.unlock", _requested(store, stored))
    finally:
        store.close()
    locks = active_locks(status, time.time())
    lifted = [t for t in stored if _locked(locks, t)]
    if lifted:
        what = "every address and login" if lifted == [ALL] else ", ".join(shown_target(t) for t in lifted)
        print(f"unlocked {what}: the running daemon lifts the lock at the next login attempt (no restart)")
    for target in (t for t in stored if t not in lifted):
        # "unlocked" of an address nobody locked sent the admin looking elsewhere for the refusal.
        what = "no login or address was" if target == ALL else f"{shown_target(target)} was not"
        print(f"{what} locked when the daemon last wrote its status; a lock made since is lifted too")
    return 0


def _requested(store: Store, targets: list[str]) -> str:
    """The unlock's audit row: what was asked to be lifted, as the command's answer names it, but
    a login only as typed when it names a user. Anything else may be a password typed into the
    user-name field, and the row is read in the panel by others; the daemon's log masks it too."""
    from acl.logins import ALL

    if ALL in targets:
        return "every address and login"
    return ", ".join(_shown(store, t) for t in targets)


def _shown(store: Store, target: str) -> str:
    from acl.logins import shown_target

    if "@" in target and store.accounts.find_user(target) is None:
        return NO_USER
    return shown_target(target)


def _locked(locks: list[dict[str, Any]], target: str) -> bool:
    return any(_lifts(lock, target) for lock in locks)


def _lifts(lock: dict[str, Any], target: str) -> bool:
    """Whether `target` lifts a lock of the status file; a login the daemon masks (it names no
    user) cannot be told from the target, so it counts as one."""
    from acl.logins import login_key, matches

    login = lock.get("login") or ""
    if "@" in target and login.startswith("[unknown login"):
        return True
    return matches((lock["kind"], lock.get("address") or "", login_key(login)), target)


def add_auth_commands(sub: Any) -> None:
    a = sub.add_parser("auth", help="submission login locks: list them, lift them").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    a.add_parser("list", help="addresses and logins locked now, and for how long").set_defaults(
        func=cmd_auth_list
    )
    u = a.add_parser("unlock", help="lift the lock of an address or login (none given: all)")
    u.add_argument("target", nargs="*", metavar="ADDR|EMAIL", help="client IP address or login email")
    u.set_defaults(func=cmd_auth_unlock)
