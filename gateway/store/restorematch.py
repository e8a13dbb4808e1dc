"""Whether the database `smsgw restore` would replace is another one than the backup's, and holds
what the restore would lose: then the restore is refused unless told `--force` (`gateway.cli.restore`).

A copy of a second gateway's database given as the backup was installed without a word: the line
said "nothing carried ... it is not the same database as the backup's", and the next start had lost
this gateway's company and its users, and sent the other gateway's queued SMS from here. The carry
(`gateway.store.restorecarry`) asks a narrow question, whether the backup's newest mail is still in
the replaced database, as it carries the mail after it; retention purges old mail, so an old backup
of this very database fails that test. Here the same database is any shared row that no other
installation has: the backup's newest mail, its first account or its first user, each by its id,
name and creation time (to the microsecond, never the same in two installations).

A database that holds nothing to lose is replaced without asking: a fresh install (the accounts
and users the config's `[[account]]` blocks seed at every start come back by themselves), a missing
or empty file. So is one that cannot be read or is no smsgw database: a restore is most often made
because the database is damaged.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

_TABLES = {"schema_version", "emails", "messages", "accounts", "users"}
_SHOWN = 3  # the accounts named in a line; the rest counted


@dataclass(frozen=True)
class Mismatch:
    """The two databases, each in a few words an admin can tell them apart by."""

    replaced: str
    backup: str


def another_database(
    copy: Path, replaced: Path, seeded_accounts: Collection[str] = (), seeded_users: Collection[str] = ()
) -> Mismatch | None:
    """How `replaced` and `copy` (the backup, copied) differ, where `replaced` holds data (more than
    the seeded accounts and users, named by `seeded_*`) and shares no row with the backup; else None."""
    if not replaced.is_file() or replaced.stat().st_size == 0:
        return None
    uri = f"file:{quote(str(replaced.resolve()))}?mode=ro"
    try:
        with closing(sqlite3.connect(f"file:{quote(str(copy))}?mode=ro", uri=True)) as conn:
            conn.execute("ATTACH DATABASE ? AS old", (uri,))
            return _compare(conn, seeded_accounts, seeded_users)
    except sqlite3.Error:
        return None  # unreadable or damaged: what the restore is for; the carry says what it found


def _compare(
    conn: sqlite3.Connection, seeded_accounts: Collection[str], seeded_users: Collection[str]
) -> Mismatch | None:
    for schema in ("main", "old"):
        names = {r[0] for r in conn.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'")}
        if not _TABLES <= names:
            return None
    if not _holds_data(conn, set(seeded_accounts), {u.lower() for u in seeded_users}):
        return None
    for same in (
        "SELECT 1 FROM main.emails c JOIN old.emails o ON o.id = c.id AND o.received_at = c.received_at"
        " WHERE c.id = (SELECT MAX(id) FROM main.emails)",
        "SELECT 1 FROM main.accounts c JOIN old.accounts o ON o.id = c.id AND o.name = c.name"
        " AND o.created_at = c.created_at WHERE c.id = (SELECT MIN(id) FROM main.accounts)",
        "SELECT 1 FROM main.users c JOIN old.users o ON o.id = c.id AND o.email = c.email"
        " AND o.created_at = c.created_at WHERE c.id = (SELECT MIN(id) FROM main.users)",
    ):
        if conn.execute(same).fetchone() is not None:
            return None
    return Mismatch(_described(conn, "old"), _described(conn, "main"))


def _holds_data(conn: sqlite3.Connection, accounts: set[str], users: set[str]) -> bool:
    """Whether the replaced database has what a fresh install has not: mail, SMS, answers, opt-outs,
    or an account or user no `[[account]]` block seeds."""
    names = {r[0] for r in conn.execute("SELECT name FROM old.sqlite_master WHERE type = 'table'")}
    for table in ("emails", "messages", "mo", "optouts"):
        if table in names and conn.execute(f"SELECT 1 FROM old.{table} LIMIT 1").fetchone():
            return True
    if any(name not in accounts for (name,) in conn.execute("SELECT name FROM old.accounts")):
        return True
    return any(email.lower() not in users for (email,) in conn.execute("SELECT email FROM old.users"))


def _described(conn: sqlite3.Connection, schema: str) -> str:
    """`accounts ACME, Biuro (2 users), 15 mails received 2026-11-02 to 2026-12-07 UTC (the newest
    id 601)`: what tells one database from another."""
    names = [r[0] for r in conn.execute(f"SELECT name FROM {schema}.accounts ORDER BY id")]
    (users,) = conn.execute(f"SELECT COUNT(*) FROM {schema}.users").fetchone()
    shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
    said = f"accounts {shown}" if names else "no accounts"
    said += f" ({users} user{'' if users == 1 else 's'})"
    count, first, last, newest = conn.execute(
        f"SELECT COUNT(*), MIN(received_at), MAX(received_at), MAX(id) FROM {schema}.emails"
    ).fetchone()
    if not count:
        return f"{said}, no mails"
    mails = f"{count} mail{'' if count == 1 else 's'}"
    return f"{said}, {mails} received {_day(first)} to {_day(last)} UTC (the newest id {newest})"


def _day(when: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(when))
