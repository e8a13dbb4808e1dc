"""Who may send and log in, as a restore puts it back: the differences named, and the audit trail kept.

A restore carries no account or user setting from the database it replaces (`gateway.store.restorecarry`):
the backup's stand. Said nowhere, the security changes an admin made after the backup went back
without a word: a network removed from an account took relay mail again, a user removed sent again,
a suspended account sent again, an operator demoted had the whole panel again, a password changed
after a leak was the leaked one again, and the audit rows of those changes were gone with the
database replaced. So were the limits, countries, quiet hours, bulk, overflow and transliteration
set since (whether, where to, when and at what cost a mail goes), and a user moved to another
account sent on the old one's bill again. So each such difference is named with the command that
makes the change again (before the daemon is started), and the replaced database's audit rows
written after the backup are kept in the restored one, under their own ids, before the restore's
own row.

Nothing is carried: an admin who restores may mean the backup's settings (a mistaken removal undone),
and a setting carried half (a suspension without holding the account's waiting SMS) is worse than one
named. Passwords are named, never their hashes shown.
"""

from __future__ import annotations

import shlex
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# An account, a user: the same row in both when its id and creation time are (a name may change).
_SAME_ACCOUNT = "c.id = o.id AND c.created_at = o.created_at"
_SAME_USER = "c.id = o.id AND c.created_at = o.created_at"


@dataclass(frozen=True)
class Reverted:
    """What the restored database has otherwise than the database replaced, about access."""

    opened: list[str]  # changes since that closed something, which the backup opens again: redo first
    closed: list[str]  # changes since that opened something, which the backup does not have
    audit_kept: int  # the replaced database's audit rows since the backup, kept

    def said(self) -> str:
        """The part of the restore's one line (and its audit row) about them."""
        parts = []
        if n := len(self.opened) + len(self.closed):
            parts.append(
                f"{n} access settings changed since the backup are the backup's again (listed below:"
                " make them again before starting the daemon)"
            )
        if self.audit_kept:
            parts.append(f"{self.audit_kept} audit rows written since the backup kept")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        return [*self.opened, *self.closed]


def compare(copy: sqlite3.Connection, replaced: Path) -> Reverted | None:
    """The differences about access between `copy` (the backup, carried into) and `replaced`, and
    the replaced database's later audit rows put into `copy` (committed: `copy` is in autocommit).
    None when `replaced` cannot be read as an smsgw database: the restore's line says why already."""
    uri = f"file:{quote(str(replaced.resolve()))}?mode=ro"
    try:
        copy.execute("ATTACH DATABASE ? AS old", (uri,))
    except sqlite3.Error:
        return None
    try:
        opened: list[str] = []
        closed: list[str] = []
        _accounts(copy, opened, closed)
        _users(copy, opened, closed)
        return Reverted(opened, closed, _keep_audit(copy))
    except sqlite3.OperationalError:  # a backup from before these tables or columns: nothing named
        return None
    finally:
        copy.execute("DETACH DATABASE old")


def _cmd(*words: str) -> str:
    return "`smsgw " + " ".join(shlex.quote(w) for w in words) + "`"


def _accounts(copy: sqlite3.Connection, opened: list[str], closed: list[str]) -> None:
    rows = copy.execute(
        "SELECT c.id, c.name, c.suspended_at IS NOT NULL, o.suspended_at IS NOT NULL, o.suspended_reason"
        f" FROM main.accounts c JOIN old.accounts o ON {_SAME_ACCOUNT} ORDER BY c.id"
    ).fetchall()
    for account_id, name, was, since, reason in rows:
        if since and not was:
            again = _cmd("account", "suspend", name, *(("--reason", reason) if reason else ()))
            opened.append(f"account {name} was suspended since the backup and is not now: {again}")
        elif was and not since:
            closed.append(
                f"account {name} was resumed since the backup and is suspended:"
                f" {_cmd('account', 'resume', name)}"
            )
        ours = _networks(copy, "main", account_id)
        theirs = _networks(copy, "old", account_id)
        if gone := [n for n in ours if n not in theirs]:
            flags = [w for n in gone for w in ("--remove-network", n)]
            opened.append(
                f"account {name}: network {', '.join(gone)} was removed since the backup and relays again:"
                f" {_cmd('account', 'set', name, *flags)}"
            )
        if added := [n for n in theirs if n not in ours]:
            flags = [w for n in added for w in ("--add-network", n)]
            closed.append(
                f"account {name}: network {', '.join(added)} added since the backup is not there:"
                f" {_cmd('account', 'set', name, *flags)}"
            )
    _account_settings(copy, opened, closed)


def _limit_option(value: object) -> str:
    return "none" if value is None else str(value)


def _stricter_limit(since: object, was: object) -> bool:
    """A limit set or lowered since: the backup's lets more parts (more cost) through."""
    return since is not None and (was is None or int(str(since)) < int(str(was)))


def _countries(value: object) -> str:
    return ", ".join(c for c in str(value or "").split(",") if c) or "any"


def _on(value: object) -> str:
    return "on" if value else "off"


# The account columns that decide whether, where to, when and at what cost a mail is sent, each with
# `account set`'s option, its value as typed and whether the value since (not the backup's) is the
# stricter one: that difference opens something again, and is to be made first.
_SETTINGS: tuple[tuple[str, str, Callable[[object], str], Callable[[object, object], bool]], ...] = (
    ("monthly_limit", "--monthly-limit", _limit_option, _stricter_limit),
    ("daily_limit", "--daily-limit", _limit_option, _stricter_limit),
    (
        "countries",
        "--countries",
        _countries,
        lambda since, was: (
            bool(since) and (not was or bool(set(str(was).split(",")) - set(str(since).split(","))))
        ),
    ),
    ("overflow", "--overflow", str, lambda since, was: since == "reject"),
    ("bulk", "--bulk", _on, lambda since, was: bool(since)),  # bulk: held in the quiet hours
    ("transliterate", "--transliterate", _on, lambda since, was: bool(since)),  # fewer, GSM parts
)


def _columns(copy: sqlite3.Connection, table: str) -> set[str]:
    """The columns both databases have: a backup from before one names nothing about it."""
    main, old = ({r[1] for r in copy.execute(f"PRAGMA {db}.table_info({table})")} for db in ("main", "old"))
    return main & old


def _account_settings(copy: sqlite3.Connection, opened: list[str], closed: list[str]) -> None:
    have = _columns(copy, "accounts")
    settings = [s for s in _SETTINGS if s[0] in have]
    quiet = {"quiet_start", "quiet_end"} <= have
    picked = [f"c.{s[0]}, o.{s[0]}" for s in settings] + (
        ["c.quiet_start || '-' || c.quiet_end"] if quiet else []
    )
    if quiet:
        picked.append("o.quiet_start || '-' || o.quiet_end")
    rows = copy.execute(
        f"SELECT c.name, {', '.join(picked)} FROM main.accounts c JOIN old.accounts o ON {_SAME_ACCOUNT}"
        " ORDER BY c.id"
    ).fetchall()
    for name, *values in rows:
        for i, (_column, option, typed, stricter) in enumerate(settings):
            was, since = values[2 * i], values[2 * i + 1]
            if typed(was) != typed(since):
                line = (
                    f"account {name}: {option.removeprefix('--')} {typed(since)} since the backup,"
                    f" {typed(was)} now: {_cmd('account', 'set', name, option, *typed(since).split(', '))}"
                )
                (opened if stricter(since, was) else closed).append(line)
        if quiet and values[-2] != values[-1]:
            was, since = values[-2] or "none", values[-1] or "none"
            line = (
                f"account {name}: quiet-hours {since} since the backup, {was} now:"
                f" {_cmd('account', 'set', name, '--quiet-hours', since)}"
            )
            (opened if since != "none" else closed).append(line)


def _networks(copy: sqlite3.Connection, db: str, account_id: int) -> list[str]:
    return [
        str(r[0])
        for r in copy.execute(
            f"SELECT cidr FROM {db}.account_networks WHERE account_id = ? ORDER BY cidr", (account_id,)
        )
    ]


def _users(copy: sqlite3.Connection, opened: list[str], closed: list[str]) -> None:
    # Removed since: in the backup, not in the database replaced.
    for (email,) in copy.execute(
        f"SELECT c.email FROM main.users c WHERE NOT EXISTS (SELECT 1 FROM old.users o WHERE {_SAME_USER})"
        " ORDER BY c.email"
    ):
        opened.append(
            f"user {email} was removed since the backup and may send again: {_cmd('user', 'remove', email)}"
        )
    # Added since, of an account the backup has (the accounts added since are named by the carry's line).
    for email, account, role in copy.execute(
        "SELECT o.email, a.name, o.role FROM old.users o JOIN main.accounts a ON a.id = o.account_id"
        " AND a.created_at = (SELECT created_at FROM old.accounts WHERE id = o.account_id)"
        f" WHERE NOT EXISTS (SELECT 1 FROM main.users c WHERE {_SAME_USER}) ORDER BY o.email"
    ):
        again = f"{_cmd('user', 'add', email, '--account', account)}, {_cmd('user', 'passwd', email)}"
        if role != "user":
            again += f", {_cmd('user', 'set', email, '--role', role)}"
        closed.append(f"user {email} added since the backup is not there: {again}")
    _user_moves(copy, opened)
    rows = copy.execute(
        "SELECT c.email, c.role, o.role, c.password_hash IS NOT o.password_hash,"
        " c.monthly_limit, o.monthly_limit, c.daily_limit, o.daily_limit"
        f" FROM main.users c JOIN old.users o ON {_SAME_USER} ORDER BY c.email"
    ).fetchall()
    for email, was, role, password, *limits in rows:
        for key, (now, since) in zip(("monthly", "daily"), (limits[0:2], limits[2:4]), strict=True):
            if now != since:
                line = (
                    f"user {email}: {key}-limit {_limit_option(since)} since the backup,"
                    f" {_limit_option(now)} now:"
                    f" {_cmd('user', 'set', email, f'--{key}-limit', _limit_option(since))}"
                )
                (opened if _stricter_limit(since, now) else closed).append(line)
        if was != role:
            again = _cmd("user", "set", email, "--role", role)
            line = f"user {email}: role {role} since the backup, {was} now: {again}"
            (opened if _RANK.get(was, 0) > _RANK.get(role, 0) else closed).append(line)
        if password:
            opened.append(
                f"password of {email} changed since the backup, the old one is back: set it again"
                f" ({_cmd('user', 'passwd', email)})"
            )


def _user_moves(copy: sqlite3.Connection, opened: list[str]) -> None:
    """A user moved to another account since: restored, it sends on the old account's bill again.
    There is no move command: the login is removed and added to the account since, which takes its
    password, role and limits, so those are named to set again too."""
    rows = copy.execute(
        "SELECT c.email, ca.name, COALESCE(oa.name, oo.name), o.role, o.monthly_limit, o.daily_limit"
        f" FROM main.users c JOIN old.users o ON {_SAME_USER}"
        " JOIN main.accounts ca ON ca.id = c.account_id"
        " JOIN old.accounts oo ON oo.id = o.account_id"
        " LEFT JOIN main.accounts oa ON oa.id = oo.id AND oa.created_at = oo.created_at"
        " WHERE c.account_id IS NOT o.account_id ORDER BY c.email"
    ).fetchall()
    for email, now, since, role, monthly, daily in rows:
        again = [
            _cmd("user", "remove", email),
            _cmd("user", "add", email, "--account", since),
            _cmd("user", "passwd", email),
        ]
        if role != "user":
            again.append(_cmd("user", "set", email, "--role", role))
        if monthly is not None or daily is not None:
            again.append(
                _cmd(
                    "user",
                    "set",
                    email,
                    "--monthly-limit",
                    _limit_option(monthly),
                    "--daily-limit",
                    _limit_option(daily),
                )
            )
        opened.append(
            f"user {email} moved to account {since} since the backup and sends on {now}'s bill again:"
            f" {', '.join(again)}"
        )


_RANK = {"user": 0, "admin": 1, "operator": 2}  # what a role may see and change in the panel


def _keep_audit(copy: sqlite3.Connection) -> int:
    """The replaced database's audit rows the copy has not (written after the backup), under their own
    ids: the trail then shows the changes made since, which the restore's own row follows."""
    tables = [
        copy.execute(f"SELECT 1 FROM {db}.sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone()
        for db in ("main", "old")
    ]
    if not all(tables):
        return 0
    theirs = {r[1] for r in copy.execute("PRAGMA old.table_info(audit)")}
    cols = ", ".join(r[1] for r in copy.execute("PRAGMA main.table_info(audit)") if r[1] in theirs)
    cur = copy.execute(
        f"INSERT INTO main.audit ({cols}) SELECT {cols} FROM old.audit o"
        " WHERE o.id > (SELECT COALESCE(MAX(id), 0) FROM main.audit WHERE action != 'phone.forget')"
        " AND NOT EXISTS (SELECT 1 FROM main.audit c WHERE c.id = o.id) ORDER BY o.id"
    )
    return cur.rowcount
